"""Who a request acts as: the scopes of API keys, the caller a key makes, and how a token is
recognised. Low in the layers, so every domain may know its caller; minting, listing and revoking
keys is app/auth.
"""

import datetime as dt
import hashlib
import hmac
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from app.models import ApiKey

TOKEN_PREFIX = "dtl_"  # noqa: S105 - a public marker, not a secret
DISPLAY_CHARS = 12
# `last_used_at` is kept to the minute: a key used again within it is not stamped again, so a
# busy integration reading with its key does not write a row on every request.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)
# Where the rate limiter (app/ratelimit.py) leaves the caller it counted, in the request's
# `scope["state"]`: `key:<id>` for a live API key, else the client address's bucket.
CALLER = "caller"


class Scope(StrEnum):
    editor = "editor"
    webhooks = "webhooks"
    admin = "admin"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is making a request: the key's id, name and scopes, and when it was last used."""

    key_id: int
    name: str
    scopes: frozenset[str]
    last_used_at: dt.datetime | None = None


def hash_token(token: str) -> str:
    # Tokens carry 256 bits of randomness, so a fast hash is enough: there is nothing to
    # brute-force that a slow hash would protect.
    return hashlib.sha256(token.encode()).hexdigest()


def authenticate(session: Session, token: str) -> Caller | None:
    """The live key for this token, or None. Reads only: `stamp` marks the key as used."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    digest = hash_token(token)
    key = session.scalars(
        select(ApiKey).where(ApiKey.prefix == token[:DISPLAY_CHARS], ApiKey.revoked_at.is_(None))
    ).first()
    # Compared in constant time; the prefix lookup narrows the row, the digest decides.
    if key is None or not hmac.compare_digest(key.token_hash, digest):
        return None
    return Caller(
        key_id=key.id,
        name=key.name,
        scopes=frozenset(key.scopes.split()),
        last_used_at=key.last_used_at,
    )


def stale(caller: Caller, now: dt.datetime) -> bool:
    """Whether the key's `last_used_at` is older than its resolution and should be stamped."""
    return caller.last_used_at is None or now - caller.last_used_at >= LAST_USED_RESOLUTION


def stamp(session: Session, key_id: int, now: dt.datetime) -> None:
    """Mark the key as used at `now`, unless another request already did within the resolution.

    The condition is in the UPDATE, so concurrent requests of one key stamp it once, and an
    older time never overwrites a newer one."""
    session.execute(
        update(ApiKey)
        .where(
            ApiKey.id == key_id,
            or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at <= now - LAST_USED_RESOLUTION),
        )
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )


def client_bucket(scope: Mapping[str, Any]) -> str:
    """The client address a request counts against: IPv4 as is, IPv6 per /64 (the block one
    subscriber usually holds, so rotating addresses inside it does not multiply a budget)."""
    client = scope.get("client")
    host: str = client[0] if client else "unknown"
    if ":" not in host:
        return "ip:" + host
    try:
        address = ipaddress.IPv6Address(host)
    except ValueError:
        return "ip:" + host
    if address.ipv4_mapped is not None:
        return f"ip:{address.ipv4_mapped}"
    return f"ip:{ipaddress.IPv6Network((address, 64), strict=False)}"


def caller_of(scope: Mapping[str, Any]) -> str:
    """Who a request is, as the rate limiter counted it; the client address when no rate
    limiter ran (RATE_LIMIT_ENABLED off)."""
    state = scope.get("state") or {}
    counted = state.get(CALLER)
    return counted if isinstance(counted, str) else client_bucket(scope)

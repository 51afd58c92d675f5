"""Stripe-style idempotency for POST: a retried request with the same key and body gets the first
response back instead of creating a duplicate."""

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import InvalidParameter
from app.models import IdempotencyRecord


@dataclass(frozen=True, slots=True)
class Stored:
    status: int
    headers: dict[str, str]
    body: bytes


def fingerprint(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(b"\0".join([method.encode(), path.encode(), body])).hexdigest()


def lookup(session: Session, api_key_id: int, key: str, request_hash: str) -> Stored | None:
    record = session.scalars(
        select(IdempotencyRecord).where(
            IdempotencyRecord.api_key_id == api_key_id, IdempotencyRecord.key == key
        )
    ).one_or_none()
    if record is None:
        return None
    if record.request_hash != request_hash:
        raise InvalidParameter(
            ["header", "Idempotency-Key"],
            "this key was already used with a different request; use a new key for a new request",
        )
    return Stored(record.status, dict(record.headers), record.body.encode())


def save(
    session: Session,
    *,
    api_key_id: int,
    key: str,
    method: str,
    path: str,
    request_hash: str,
    stored: Stored,
) -> None:
    headers: dict[str, Any] = dict(stored.headers)
    session.add(
        IdempotencyRecord(
            api_key_id=api_key_id,
            key=key,
            method=method,
            path=path,
            request_hash=request_hash,
            status=stored.status,
            headers=headers,
            body=stored.body.decode(),
        )
    )
    session.flush()

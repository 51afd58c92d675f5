"""HTTP conventions shared by the write routes: ETags, If-Match, merge patch, idempotency."""

from collections.abc import Callable
from typing import Annotated, Any

import orjson
from fastapi import Header, Request
from sqlalchemy.orm import Session

from app.callers import Caller
from app.errors import InvalidParameter, PreconditionRequired
from app.idempotency import service as idempotency
from app.json import JSONBytes
from app.schemas import InputModel

MERGE_PATCH = "application/merge-patch+json"

IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description="The ETag from your last read. Required: a stale one gets 412.",
        examples=['"3"'],
    ),
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="Any unique string. Retrying with the same key and body returns the first"
        " response instead of creating a duplicate; the same key with another body is a 422.",
    ),
]


def etag(version: int) -> str:
    return f'"{version}"'


def expected_version(if_match: str | None) -> int | None:
    """The version named by If-Match; None for `*` (any current version)."""
    if if_match is None:
        raise PreconditionRequired(
            "Send If-Match with the ETag of the version you read, so a concurrent edit is not lost."
        )
    value = if_match.strip()
    if value == "*":
        return None
    value = value.removeprefix("W/")
    # Served ETags are "<version>-<content hash>" (app/caching.py); a bare "<version>" works too.
    version = (
        value[1:-1].split("-", 1)[0] if len(value) >= 3 and value[0] == value[-1] == '"' else ""
    )
    if version.isdigit():
        return int(version)
    raise InvalidParameter(["header", "If-Match"], 'expected an ETag such as "3"')


def resource_response(
    body: dict[str, Any], *, version: int, status: int = 200, location: str | None = None
) -> JSONBytes:
    headers = {"ETag": etag(version)}
    if location:
        headers["Location"] = location
    return JSONBytes(body, status_code=status, headers=headers)


def idempotent(
    request: Request,
    caller: Caller,
    key: str | None,
    data: InputModel,
    session: Session,
    create: Callable[[], JSONBytes],
) -> JSONBytes:
    """Run `create` once per (key, Idempotency-Key); replay its response on retries."""
    if key is None:
        return create()
    body = orjson.dumps(data.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    request_hash = idempotency.fingerprint(request.method, request.url.path, body)
    stored = idempotency.lookup(session, caller.key_id, key, request_hash)
    if stored is not None:
        replay = JSONBytes.from_bytes(stored.body, headers=stored.headers)
        replay.status_code = stored.status
        replay.headers["Idempotent-Replayed"] = "true"
        return replay
    response = create()
    headers = {k: v for k, v in response.headers.items() if k.lower() in {"etag", "location"}}
    idempotency.save(
        session,
        api_key_id=caller.key_id,
        key=key,
        method=request.method,
        path=request.url.path,
        request_hash=request_hash,
        stored=idempotency.Stored(response.status_code, headers, bytes(response.body)),
    )
    return response


def created(
    request: Request,
    caller: Caller,
    key: str | None,
    data: InputModel,
    session: Session,
    make: Callable[[], tuple[dict[str, Any], int]],
    location: Callable[[dict[str, Any]], str] = lambda doc: str(doc["url"]),
) -> JSONBytes:
    """The 201 answer to a POST that creates a resource, with ETag and Location, made once per
    Idempotency-Key."""

    def create() -> JSONBytes:
        doc, version = make()
        return resource_response(doc, version=version, status=201, location=location(doc))

    return idempotent(request, caller, key, data, session, create)

from collections.abc import Sequence
from typing import Any

from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.errors import Conflict, Gone, NotFound
from app.models import (
    Claim,
    Event,
    EventSource,
    Membership,
    Source,
    claim_source,
    membership_source,
    organisation_source,
)
from app.revisions import service as revision_service
from app.schemas import fold, patched
from app.sources.schemas import SourceIn

SOURCE_FIELDS = ("publisher", "title", "published_on", "language")


def read(source: Source) -> dict[str, Any]:
    return {
        "id": source.id,
        "url": source.url,
        "publisher": source.publisher,
        "title": source.title,
        "published_on": source.published_on,
        "language": source.language,
    }


def upsert(session: Session, data: SourceIn, actor: str) -> Source:
    """The source with this URL, created or brought up to date with `data` (a revision each)."""
    source = session.scalars(select(Source).where(Source.url == data.url)).one_or_none()
    if (
        source is not None
        and source.deleted_at is None
        and as_input(source).canonical() == data.canonical()
    ):
        return source
    before = read(source) if source is not None and source.deleted_at is None else None
    if source is None:
        source = Source(url=data.url)
        session.add(source)
    for field in SOURCE_FIELDS:
        setattr(source, field, getattr(data, field))
    # Citing a deleted source again brings it back.
    source.deleted_at = None
    source.updated_at = utcnow()
    session.flush()
    revision_service.record(
        session,
        resource="source",
        key=str(source.id),
        version=source.version,
        operation="update" if before else "create",
        actor=actor,
        before=before,
        after=read(source),
    )
    return source


def as_input(source: Source) -> SourceIn:
    return SourceIn(
        url=source.url,
        publisher=source.publisher,
        title=source.title,
        published_on=source.published_on,
        language=source.language,
    )


def input_rows(session: Session, ids: Sequence[int]) -> Sequence[Source]:
    """These sources loaded for `as_input`, deleted ones too (an archive import checks them)."""
    return session.scalars(select(Source).where(Source.id.in_(ids))).all()


def _load_source(session: Session, source_id: int, *, lock: bool = False) -> Source:
    stmt = select(Source).where(Source.id == source_id)
    if lock:
        stmt = stmt.with_for_update()
    source = session.scalars(stmt).one_or_none()
    if source is None:
        raise NotFound(f"No source with id {source_id}.")
    return source


def get_source(session: Session, source_id: int) -> tuple[dict[str, Any], int]:
    source = _load_source(session, source_id)
    if source.deleted_at is not None:
        raise Gone(f"Source {source_id} was deleted on {source.deleted_at.isoformat()}.")
    return read(source), source.version


def list_sources(session: Session, q: str | None, limit: int, offset: int) -> dict[str, Any]:
    """Sources by publisher and URL; `q` matches either, ignoring case."""
    stmt = select(Source).where(Source.deleted_at.is_(None))
    if q:
        needle = "%" + fold(q).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = stmt.where(
            or_(
                func.lower(Source.publisher).like(needle, escape="\\"),
                func.lower(Source.url).like(needle, escape="\\"),
            )
        )
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(Source.id).limit(limit).offset(offset))
    return {"items": [read(s) for s in rows], "total": total}


def create(session: Session, data: SourceIn, actor: str) -> tuple[dict[str, Any], int]:
    if session.scalar(select(Source.id).where(Source.url == data.url)) is not None:
        raise Conflict(f"A source with URL {data.url} already exists; PATCH it instead.")
    source = upsert(session, data, actor)
    return read(source), source.version


def update(
    session: Session, source_id: int, patch: dict[str, Any], expected: int | None, actor: str
) -> tuple[dict[str, Any], int]:
    source = _load_source(session, source_id, lock=True)
    revision_service.guard(
        "Source",
        str(source_id),
        deleted_at=source.deleted_at,
        version=source.version,
        expected=expected,
    )
    merged = patched(as_input(source), patch, fixed=("url",), what="a source")
    upsert(session, SourceIn.model_validate(merged), actor)
    return get_source(session, source_id)


def delete(session: Session, source_id: int, expected: int | None, actor: str) -> None:
    source = _load_source(session, source_id, lock=True)
    revision_service.guard(
        "Source",
        str(source_id),
        deleted_at=source.deleted_at,
        version=source.version,
        expected=expected,
    )
    live_event = select(Event.id).where(Event.deleted_at.is_(None))
    live_claim = select(Claim.id).where(Claim.event_id.in_(live_event))
    live_membership = select(Membership.id).where(Membership.deleted_at.is_(None))
    in_use = session.scalar(
        select(
            exists().where(EventSource.source_id == source_id, EventSource.event_id.in_(live_event))
            | exists().where(
                claim_source.c.source_id == source_id, claim_source.c.claim_id.in_(live_claim)
            )
            | exists().where(
                membership_source.c.source_id == source_id,
                membership_source.c.membership_id.in_(live_membership),
            )
            | exists().where(organisation_source.c.source_id == source_id)
        )
    )
    if in_use:
        raise Conflict(
            f"Source {source_id} is still cited; an event must keep at least one source, so"
            " remove the citations first."
        )
    before = read(source)
    revision_service.soft_delete(
        session, source, resource="source", key=str(source_id), before=before, actor=actor
    )


def revisions(session: Session, source_id: int) -> list[dict[str, Any]]:
    _load_source(session, source_id)
    return revision_service.history(session, "source", str(source_id))

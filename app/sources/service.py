from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Source
from app.sources.schemas import SourceIn

SOURCE_FIELDS = ("publisher", "title", "published_on", "language")


def upsert(session: Session, data: SourceIn) -> Source:
    """The source with this URL, created or brought up to date with `data`."""
    source = session.scalars(select(Source).where(Source.url == data.url)).one_or_none()
    if source is None:
        source = Source(url=data.url)
        session.add(source)
    for field in SOURCE_FIELDS:
        if getattr(source, field) != getattr(data, field):
            setattr(source, field, getattr(data, field))
    return source


def as_input(source: Source) -> SourceIn:
    return SourceIn(
        url=source.url,
        publisher=source.publisher,
        title=source.title,
        published_on=source.published_on,
        language=source.language,
    )

import datetime as dt
from typing import Annotated

from pydantic import Field, StringConstraints

from app.schemas import InputModel, Name, ReadModel

Url = Annotated[
    str,
    StringConstraints(pattern=r"^https?://\S+$", max_length=2000),
    Field(
        examples=[
            "https://www.devdiscourse.com/article/law-order/3330554-algerian-army-downs-intruding-surveillance-drone"
        ]
    ),
]


class SourceIn(InputModel):
    """A published text that supports an event, a membership or a claim. The URL is its key."""

    url: Url
    publisher: Name = Field(examples=["Reuters via Devdiscourse"])
    title: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = None
    published_on: dt.date | None = None
    language: Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$")] | None = (
        Field(default=None, description="ISO 639-1 code.", examples=["en"])
    )


class SourceRead(ReadModel):
    url: str
    publisher: str
    title: str | None
    published_on: dt.date | None
    language: str | None


class SourceDetail(SourceRead):
    id: int


class SourceList(ReadModel):
    items: list[SourceDetail]
    total: int

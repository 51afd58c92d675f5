import datetime as dt
from typing import Any, Literal

from pydantic import Field

from app.schemas import ReadModel

Operation = Literal["create", "update", "delete"]


class RevisionRead(ReadModel):
    revision: int = Field(description="Position of this change in the change feed.")
    resource: str = Field(examples=["event"])
    id: str = Field(description="The resource's public id or code.")
    version: int = Field(description="The resource's version (ETag) after this change.")
    operation: Operation
    actor: str = Field(description="The API key's name, or `seed` for the seed loader.")
    at: dt.datetime
    before: dict[str, Any] | None = Field(description="The representation before the change.")
    after: dict[str, Any] | None = Field(
        description="The representation after it; null for a delete."
    )


class RevisionList(ReadModel):
    items: list[RevisionRead]


class ChangeRead(ReadModel):
    position: str = Field(description="Opaque feed position; pass the last one as `since`.")
    revision: int
    resource: str = Field(examples=["event"])
    id: str
    version: int
    operation: Operation
    actor: str
    at: dt.datetime
    data: dict[str, Any] | None = Field(
        description="The new representation, or null (a tombstone)."
    )


class ChangeFeed(ReadModel):
    items: list[ChangeRead]
    next_since: str = Field(description="Pass as `since` to continue after the last item.")
    has_more: bool = Field(description="True when a full page was returned: ask again at once.")

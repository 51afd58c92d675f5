import datetime as dt

from pydantic import Field

from app.schemas import ReadModel


class AuditEntryRead(ReadModel):
    id: int
    at: dt.datetime = Field(description="When the write committed (UTC).")
    request_id: str | None = Field(
        description="The request's `X-Request-ID`: find its log lines with it."
    )
    key_id: int | None = Field(description="The API key used (null if the key was deleted).")
    key_name: str = Field(description="The key's name at the time.")
    scopes: list[str] = Field(description="The key's scopes at the time.")
    method: str = Field(examples=["PATCH"])
    path: str = Field(examples=["/v1/events/2025-04-01-algeria-shoots-down-malian-drone"])
    action: str = Field(
        description="The operation (the route's name).", examples=["update_event", "revoke_key"]
    )
    target: str | None = Field(
        description="What it changed: the resources it created or revised (`event/<id>`,"
        " `key/<id>`, `webhook-endpoint/<id>`), else the path parameters (`key_id=3`).",
        examples=["event/2025-04-01-algeria-shoots-down-malian-drone"],
    )
    status: int = Field(description="The HTTP status the write was acknowledged with.")
    client_ip: str | None


class AuditList(ReadModel):
    items: list[AuditEntryRead]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next (older) page; null on the last page."
    )

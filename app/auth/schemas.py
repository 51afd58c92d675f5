import datetime as dt
from typing import Annotated

from pydantic import Field, StringConstraints

from app.callers import Scope
from app.schemas import InputModel, ReadModel


class KeyCreate(InputModel):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)] = Field(
        examples=["newsroom-editor"]
    )
    scopes: list[Scope] = Field(min_length=1, examples=[["editor"]])


class KeyRead(ReadModel):
    id: int
    name: str
    prefix: str = Field(description="The token's first characters, to recognise it.")
    scopes: list[Scope]
    created_at: dt.datetime
    last_used_at: dt.datetime | None = Field(
        description=(
            "When a request last authenticated with the key, to the minute: a write stamps it"
            " in its own transaction, a read just after its response."
        )
    )
    revoked_at: dt.datetime | None


class KeyCreated(KeyRead):
    token: str = Field(description="The secret token. Shown only in this response; store it now.")


class KeyRevoked(KeyRead):
    webhook_endpoints_disabled: list[str] = Field(
        description="The key's webhook endpoints, all disabled by the revocation (reason"
        " `revoked`): nothing more is delivered to them, and they cannot be enabled again."
    )


class KeyList(ReadModel):
    items: list[KeyRead]

from typing import Annotated

from pydantic import Field, StringConstraints

from app.organisations.schemas import MembershipRead
from app.schemas import InputModel, Latitude, Longitude, Name, ReadModel, StateCode, WikidataQid


class StateCreate(InputModel):
    code: StateCode
    alpha2: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] = Field(examples=["ML"])
    numeric: Annotated[str, StringConstraints(pattern=r"^[0-9]{3}$")] | None = Field(
        default=None, examples=["466"]
    )
    name: Name = Field(examples=["Mali"])
    official_name: Name | None = None
    capital: Name | None = None
    capital_lat: Latitude | None = None
    capital_lon: Longitude | None = None
    wikidata_qid: WikidataQid | None = None
    aliases: list[Name] = Field(default_factory=list, max_length=200)


class Point(ReadModel):
    lat: float
    lon: float


class StateRead(ReadModel):
    code: str = Field(examples=["MLI"])
    alpha2: str = Field(examples=["ML"])
    numeric: str | None = Field(examples=["466"])
    name: str = Field(examples=["Mali"])
    official_name: str | None
    capital: str | None = Field(examples=["Bamako"])
    capital_location: Point | None
    wikidata_qid: str | None
    aliases: list[str] = Field(description="Other names and spellings; all are searchable.")
    url: str = Field(examples=["/v1/states/MLI"])


class StateDetail(StateRead):
    memberships: list[MembershipRead] = Field(
        description="Every membership period of this state, suspensions included, oldest first."
    )


class StateList(ReadModel):
    items: list[StateRead]

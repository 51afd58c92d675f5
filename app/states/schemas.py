from typing import Annotated, Any

from pydantic import Field

from app.organisations.schemas import MembershipRead
from app.schemas import (
    InputModel,
    Latitude,
    Longitude,
    Name,
    ReadModel,
    Shape,
    StateCode,
    WikidataQid,
)


class StateCreate(InputModel):
    code: StateCode
    alpha2: Annotated[
        str,
        Shape(
            r"^[A-Za-z]{2}$",
            "{value} is not an ISO 3166-1 alpha-2 code: use two letters, such as ML",
            upper=True,
        ),
    ] = Field(examples=["ML"])
    numeric: (
        Annotated[
            str,
            Shape(
                r"^[0-9]{3}$", "{value} is not an ISO 3166-1 numeric code: 3 digits, such as 466"
            ),
        ]
        | None
    ) = Field(default=None, examples=["466"])
    name: Name = Field(examples=["Mali"])
    official_name: Name | None = None
    capital: Name | None = None
    capital_lat: Latitude | None = None
    capital_lon: Longitude | None = None
    wikidata_qid: WikidataQid | None = None
    aliases: list[Name] = Field(default_factory=list, max_length=200)

    def stored_aliases(self) -> list[str]:
        """Every name the state is found by: its name and official name are aliases too, so one
        alias lookup finds a state by any of its names."""
        names = [self.name, *((self.official_name,) if self.official_name else ()), *self.aliases]
        return sorted(dict.fromkeys(names))

    def canonical(self) -> dict[str, Any]:
        return {**super().canonical(), "aliases": self.stored_aliases()}


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

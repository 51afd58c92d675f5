from pydantic import Field

from app.schemas import InputModel, Latitude, Longitude, Name, PlaceCodeText, ReadModel, StateCode


class PlaceCreate(InputModel):
    code: PlaceCodeText = Field(examples=["tinzaouaten"])
    name: Name = Field(examples=["Tinzaouaten"])
    state: StateCode | None = None
    lat: Latitude | None = None
    lon: Longitude | None = None
    aliases: list[Name] = Field(default_factory=list, max_length=200)


class PlaceRead(ReadModel):
    code: str = Field(examples=["tinzaouaten"])
    name: str
    state: str | None
    lat: float | None
    lon: float | None
    aliases: list[str] = Field(description="Spellings; `q` on the timeline searches all of them.")
    url: str


class PlaceList(ReadModel):
    items: list[PlaceRead]

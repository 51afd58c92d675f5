from typing import Any

from pydantic import Field

from app.schemas import InputModel, Latitude, Longitude, Name, PlaceCodeText, ReadModel, StateCode


class PlaceCreate(InputModel):
    code: PlaceCodeText = Field(examples=["tinzaouaten"])
    name: Name = Field(examples=["Tinzaouaten"])
    state: StateCode | None = None
    lat: Latitude | None = None
    lon: Longitude | None = None
    aliases: list[Name] = Field(default_factory=list, max_length=200)

    def stored_aliases(self) -> list[str]:
        """Every spelling the place is found by; its name is one of them."""
        return sorted(dict.fromkeys([self.name, *self.aliases]))

    def canonical(self) -> dict[str, Any]:
        return {**super().canonical(), "aliases": self.stored_aliases()}


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

import datetime as dt
from typing import Any, Self

from pydantic import Field, ValidationInfo, field_validator, model_validator

from app.schemas import (
    InputModel,
    Name,
    OrganisationCode,
    ReadModel,
    StateCode,
    Text,
    WikidataQid,
    check_precision,
)
from app.sources.schemas import SourceIn, SourceRead
from app.vocabulary import DatePrecision, MembershipEnd, MembershipStatus, OrganisationKind


class OrganisationNameIn(InputModel):
    """A name the organisation bore from `valid_from` up to (not including) `valid_to`."""

    name: Name
    valid_from: dt.date | None = None
    valid_from_precision: DatePrecision | None = None
    valid_to: dt.date | None = None
    valid_to_precision: DatePrecision | None = None

    @model_validator(mode="after")
    def _dates(self) -> Self:
        check_precision(self.valid_from, self.valid_from_precision, "valid_from")
        check_precision(self.valid_to, self.valid_to_precision, "valid_to")
        if self.valid_from and self.valid_to and self.valid_to < self.valid_from:
            raise ValueError("valid_to is before valid_from")
        return self


class OrganisationCreate(InputModel):
    code: OrganisationCode
    name: Name = Field(description="Current name.", examples=["Confederation of Sahel States"])
    kind: OrganisationKind
    headquarters: Name | None = None
    wikidata_qid: WikidataQid | None = None
    description: Text | None = None
    founded_on: dt.date | None = None
    founded_precision: DatePrecision | None = None
    dissolved_on: dt.date | None = None
    dissolved_precision: DatePrecision | None = None
    names: list[OrganisationNameIn] = Field(default_factory=list, max_length=50)
    aliases: list[Name] = Field(default_factory=list, max_length=200)
    sources: list[SourceIn] = Field(default_factory=list, max_length=50)

    unordered = ("sources",)

    def stored_aliases(self) -> list[str]:
        """Every name the organisation is found by: its code, its name and its names over time
        are aliases too."""
        names = [self.code, self.name, *(n.name for n in self.names), *self.aliases]
        return sorted(dict.fromkeys(names))

    def canonical(self) -> dict[str, Any]:
        return {**super().canonical(), "aliases": self.stored_aliases()}

    @model_validator(mode="after")
    def _dates(self) -> Self:
        check_precision(self.founded_on, self.founded_precision, "founded_on")
        check_precision(self.dissolved_on, self.dissolved_precision, "dissolved_on")
        if self.founded_on and self.dissolved_on and self.dissolved_on < self.founded_on:
            raise ValueError("dissolved_on is before founded_on")
        if len({n.name for n in self.names}) != len(self.names):
            raise ValueError("a name is listed twice")
        if len({s.url for s in self.sources}) != len(self.sources):
            raise ValueError("a source is listed twice")
        return self


class MembershipCreate(InputModel):
    """One period in which a state held one status in an organisation.

    `end_on` is exclusive (the first day the status no longer held). `end` says whether the
    period is still `open`, ended on `end_on` (`dated`), or ended on a date the sources do
    not give (`unknown`).
    """

    organisation: OrganisationCode
    state: StateCode
    status: MembershipStatus
    start_on: dt.date
    start_precision: DatePrecision
    end_on: dt.date | None = None
    end_precision: DatePrecision | None = None
    end: MembershipEnd
    note: Text | None = None
    sources: list[SourceIn] = Field(min_length=1, max_length=50)

    unordered = ("sources",)

    # Field validators so that each error names its field.

    @field_validator("start_precision")
    @classmethod
    def _start(cls, value: DatePrecision, info: ValidationInfo) -> DatePrecision:
        if "start_on" in info.data:
            check_precision(info.data["start_on"], value, "start_on")
        return value

    @field_validator("end_precision")
    @classmethod
    def _end_precision(
        cls, value: DatePrecision | None, info: ValidationInfo
    ) -> DatePrecision | None:
        if "end_on" in info.data:
            check_precision(info.data["end_on"], value, "end_on")
        return value

    @field_validator("end_on")
    @classmethod
    def _end_on(cls, value: dt.date | None, info: ValidationInfo) -> dt.date | None:
        start = info.data.get("start_on")
        if value is not None and start is not None and value < start:
            raise ValueError("end_on is before start_on")
        return value

    @field_validator("end")
    @classmethod
    def _end(cls, value: MembershipEnd, info: ValidationInfo) -> MembershipEnd:
        if (value is MembershipEnd.dated) != (info.data.get("end_on") is not None):
            raise ValueError("end_on is required when end is 'dated' and forbidden otherwise")
        return value

    @field_validator("sources")
    @classmethod
    def _sources(cls, value: list[SourceIn]) -> list[SourceIn]:
        if len({s.url for s in value}) != len(value):
            raise ValueError("a source is listed twice")
        return value


class OrganisationNameRead(ReadModel):
    name: str
    valid_from: dt.date | None
    valid_from_precision: DatePrecision | None
    valid_to: dt.date | None
    valid_to_precision: DatePrecision | None


class OrganisationRead(ReadModel):
    code: str = Field(examples=["AES"])
    name: str = Field(examples=["Confederation of Sahel States"])
    kind: OrganisationKind
    headquarters: str | None
    wikidata_qid: str | None
    description: str | None
    founded_on: dt.date | None = Field(examples=["2023-09-16"])
    founded_precision: DatePrecision | None
    dissolved_on: dt.date | None
    dissolved_precision: DatePrecision | None
    names: list[OrganisationNameRead] = Field(description="Names over time, oldest first.")
    aliases: list[str]
    sources: list[SourceRead]
    url: str = Field(examples=["/v1/organisations/AES"])


class OrganisationList(ReadModel):
    items: list[OrganisationRead]


class MembershipRead(ReadModel):
    id: int = Field(description="The membership's id, for PATCH and DELETE.", examples=[12])
    organisation: str = Field(examples=["CEMOC"])
    organisation_name: str
    state: str = Field(examples=["MLI"])
    state_name: str
    status: MembershipStatus
    start_on: dt.date = Field(examples=["2010-04-01"])
    start_precision: DatePrecision
    end_on: dt.date | None = Field(description="Exclusive end.", examples=["2025-04-06"])
    end_precision: DatePrecision | None
    end: MembershipEnd
    note: str | None
    sources: list[SourceRead]


class MemberAsOf(ReadModel):
    state: str = Field(examples=["MLI"])
    state_name: str
    status: MembershipStatus = Field(description="founding_member or member.")
    since: dt.date
    since_precision: DatePrecision
    until: dt.date | None = Field(description="Exclusive end of the membership, if dated.")
    end: MembershipEnd
    suspended: bool | None = Field(
        description="True when a suspension covers `as_of`; null when a suspension began before"
        " `as_of` and the sources do not say when it ended; false otherwise."
    )
    suspension: MembershipRead | None
    sources: list[SourceRead]


class MembersAsOf(ReadModel):
    organisation: str = Field(examples=["AES"])
    name_as_of: str = Field(
        description="The organisation's name on that date.", examples=["Alliance of Sahel States"]
    )
    as_of: dt.date
    members: list[MemberAsOf]
    uncertain: list[MembershipRead] = Field(
        description=(
            "Periods that began before `as_of` and ended on a date the sources do not give:"
            " the data cannot say whether they still held on `as_of`."
        )
    )

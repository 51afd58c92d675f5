from pydantic import Field

from app.schemas import ReadModel
from app.vocabulary import EventKind


class CameoRead(ReadModel):
    code: str = Field(examples=["161"])
    name: str = Field(examples=["Reduce or break diplomatic relations"])
    goldstein: float = Field(
        description="Goldstein conflict-cooperation score, -10 to +10.", examples=[-4.0]
    )


class CategoryRead(ReadModel):
    slug: str = Field(examples=["ambassador_recall"])
    kind: EventKind
    label: str
    description: str
    cameo: list[CameoRead] = Field(description="CAMEO codes this category maps to, main one first.")


class Vocabulary(ReadModel):
    items: list[CategoryRead]
    cameo_codes: list[CameoRead] = Field(description="Every CAMEO code the dataset may use.")

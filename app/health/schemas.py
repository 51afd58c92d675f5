from pydantic import BaseModel, Field


class Health(BaseModel):
    status: str = Field(examples=["ok"])


class Readiness(BaseModel):
    status: str = Field(examples=["ready"])
    database: str = Field(examples=["sqlite"])
    migration: str | None = Field(description="Revision the database is at.")
    head: str = Field(description="Revision this code expects.")

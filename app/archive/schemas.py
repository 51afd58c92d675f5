"""The archive format, `diplomatic-timeline-archive` version 1.

An archive is one UTF-8 JSON object. Its keys come in this order, so that a reader streaming
it can check what it is before it reads any row:

```
{"format": "diplomatic-timeline-archive",
 "version": 1,
 "schema_revision": "2f9d4b6c8e10",
 "excluded": {"api_key": "why it is not in the archive", ...},
 "tables": [
  {"name": "state", "columns": ["id", "code", ...], "row_count": 14, "rows": [
   [1, "MLI", ...],
   ...
  ]},
  ...
 ]}
```

- `format` and `version` name this layout. A reader refuses any other pair: a change to the
  layout, or to how a value is written, is a new version.
- `schema_revision` is the Alembic revision of the database the archive was taken from. Rows
  are restored into a database at the same revision only: migrations may transform data, so an
  older archive is restored into an empty database migrated to that revision (`alembic upgrade
  <revision>`), which is then upgraded as usual.
- `excluded` names the tables that are deliberately left out, with the reason.
- `tables` lists every other table, parents before children (foreign-key order), each once.
  `columns` names the values of each row, in order; `row_count` is the number of rows; `rows`
  are sorted by primary key (text keys in binary order), so the same data always gives the
  same bytes, whichever database it is read from.
- Values: integers and floats as JSON numbers, text as strings, `null` for NULL, dates as
  `YYYY-MM-DD`, instants in UTC as RFC 3339 with a `Z` (`2026-11-25T15:26:00.123456Z`;
  microseconds only when not zero), JSON columns as the JSON they hold (a JSON `null` there is
  restored as the application writes it).

The file is written one row per line with no time stamp of its own, so two exports of the
same data are byte-identical and `diff` shows what changed between two backups.
"""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

FORMAT: Literal["diplomatic-timeline-archive"] = "diplomatic-timeline-archive"
VERSION: Literal[1] = 1

# Operational state and secrets, not the dataset. A restored database starts with no API key
# and no webhook subscription: mint keys with `python -m app.keys create` and subscribe again.
EXCLUDED: dict[str, str] = {
    "api_key": "API keys are credentials (token hashes); mint new keys after a restore",
    "idempotency_record": "replays of recent POST responses, tied to API keys",
    "webhook_endpoint": "subscriber URLs and their signing secrets; subscribe again",
    "webhook_message": "the webhook outbox: operational state, pruned by retention",
    "webhook_delivery": "the webhook work queue: operational state",
    "webhook_attempt": "the webhook delivery log: operational state",
    "audit_entry": "the security audit log of API keys, which are not exported",
    "event_document": "each event's served JSON, derived from the other tables; rebuilt on import",
    "facet_event": "what each event adds to the facet counts, derived; rebuilt on import",
    "facet_count": "facet counts, derived from the other tables; rebuilt on import",
    "facet_actor_count": "facet counts per actor, derived from the other tables; rebuilt on import",
}


class ArchiveHeader(BaseModel):
    """What precedes the tables. Read (and checked) before any row is written."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["diplomatic-timeline-archive"]
    version: Literal[1]
    schema_revision: str = Field(description="Alembic revision the rows belong to")
    excluded: dict[str, str] = Field(description="tables left out on purpose, with the reason")


class TableHeader(BaseModel):
    """What precedes the rows of one table."""

    model_config = ConfigDict(extra="forbid")

    name: str
    columns: list[str]
    row_count: int = Field(ge=0)


class ArchiveTable(TableHeader):
    rows: list[list[Any]] = Field(description="one array per row, values in `columns` order")


class ArchiveDocument(ArchiveHeader):
    """A whole archive, as `GET /v1/archive` serves it (documentation only: it is streamed)."""

    tables: list[ArchiveTable]


class TableSummary(BaseModel):
    name: str
    rows: int


class ArchiveSummary(BaseModel):
    """What an export wrote or an import restored."""

    schema_revision: str
    tables: list[TableSummary]
    seconds: float

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)

    def counts(self) -> dict[str, Any]:
        return {t.name: t.rows for t in self.tables}

"""Which database errors become a 503: the ones that say "not now", never the ones that say
"not this request"."""

import sqlite3

import pytest
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    OperationalError,
    ProgrammingError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout

from app.errors import database_unavailable

CLOSED = sqlite3.InterfaceError("Cannot operate on a closed database.")


@pytest.mark.parametrize(
    ("error", "unavailable"),
    [
        (OperationalError("BEGIN IMMEDIATE", {}, sqlite3.OperationalError("locked")), True),
        (PoolTimeout("QueuePool limit of size 4 overflow 0 reached"), True),
        (DisconnectionError("connection lost"), True),
        (DBAPIError("SELECT 1", {}, CLOSED, connection_invalidated=True), True),
        (IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE")), False),
        (ProgrammingError("SELEC", {}, sqlite3.ProgrammingError("syntax")), False),
        (DataError("INSERT", {}, sqlite3.DataError("too long")), False),
        (ValueError("not a database error"), False),
    ],
)
def test_only_transient_database_errors_are_unavailable(
    error: Exception, unavailable: bool
) -> None:
    assert database_unavailable(error) is unavailable

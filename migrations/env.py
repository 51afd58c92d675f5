from alembic import context
from sqlalchemy import Connection

from app import models  # noqa: F401 - registers every table on the metadata
from app.config import get_settings
from app.db import Base, create_db_engine

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    # Tests pass the URL explicitly; everything else takes DATABASE_URL through the settings.
    return config.attributes.get("database_url") or get_settings().database_url


# Dialect-specific search objects made by the full-text migration; not in the metadata.
SEARCH_OBJECTS = (
    "event_fts",
    "ix_event_search",
    "search_vector",
    "search_actors",
    "search_repeats",
    "ix_event_search_repeats",
    "search_word",
)


def _include(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    return not (name and name.startswith(SEARCH_OBJECTS))


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things in place; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=_include,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_db_engine(_url())
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            # Batch mode rebuilds a table by dropping it; with foreign keys on, that drop would
            # cascade-delete every row that references it. The pragma only takes effect outside
            # a transaction, hence the raw DBAPI connection before SQLAlchemy begins one.
            conn.connection.dbapi_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
        _run(conn)
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

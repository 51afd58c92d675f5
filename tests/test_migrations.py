from alembic import command
from sqlalchemy import inspect

from app.db import Base, create_db_engine
from tests.conftest import ThrowawayDatabases, alembic_config


def table_names(url: str) -> set[str]:
    engine = create_db_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_check_downgrade_upgrade(databases: ThrowawayDatabases) -> None:
    url = databases.new()
    config = alembic_config(url)
    command.upgrade(config, "head")
    assert table_names(url) == set(Base.metadata.tables)
    # Fails if the models and the migrations disagree.
    command.check(config)
    command.downgrade(config, "base")
    assert table_names(url) == set()
    command.upgrade(config, "head")
    assert table_names(url) == set(Base.metadata.tables)


def test_every_constraint_is_named(databases: ThrowawayDatabases) -> None:
    for table in Base.metadata.tables.values():
        for constraint in table.constraints:
            assert constraint.name, f"unnamed constraint on {table.name}"

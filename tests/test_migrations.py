import pytest
from alembic import command
from sqlalchemy import Engine, func, inspect, select, text
from sqlalchemy.exc import IntegrityError

from app import writes
from app.config import PROJECT_ROOT
from app.db import Base, create_db_engine
from app.models import Event, FacetActorCount, FacetEvent
from app.seed import load
from app.timeline import counts
from tests.conftest import ThrowawayDatabases, alembic_config, revision_before


def table_names(url: str) -> set[str]:
    engine = create_db_engine(url)
    try:
        names = set(inspect(engine).get_table_names()) - {"alembic_version"}
        # SQLite's full-text index (event_fts and its shadow tables) and PostgreSQL's list of
        # words live outside the metadata.
        return {n for n in names if not n.startswith("event_fts") and n != "search_word"}
    finally:
        engine.dispose()


def seeded_at_head(url: str) -> Engine:
    """The database at `url` migrated to head and loaded with the real seed."""
    command.upgrade(alembic_config(url), "head")
    engine = create_db_engine(url)
    with writes.session_factory(engine)() as session:
        load(session, PROJECT_ROOT / "seed", progress=lambda _: None)
        session.commit()
    return engine


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


def test_downgrade_keeps_the_data(databases: ThrowawayDatabases) -> None:
    """Stepping back one migration and forward again loses no row (SQLite rebuilds tables)."""
    url = databases.new()
    config = alembic_config(url)
    engine = seeded_at_head(url)

    def rows() -> dict[str, int]:
        with engine.connect() as conn:
            return {
                name: conn.execute(select(func.count()).select_from(table)).scalar_one()
                for name, table in Base.metadata.tables.items()
                if name in {"event", "event_participant", "claim", "membership", "state_alias"}
            }

    before = rows()
    assert before["event_participant"] > 0
    command.downgrade(config, "-1")
    assert rows() == before
    command.upgrade(config, "head")
    assert rows() == before
    engine.dispose()


def test_every_constraint_is_named(databases: ThrowawayDatabases) -> None:
    for table in Base.metadata.tables.values():
        for constraint in table.constraints:
            assert constraint.name, f"unnamed constraint on {table.name}"


def test_alleged_initiator_role_up_and_down(databases: ThrowawayDatabases) -> None:
    """The role CHECK admits `alleged_initiator` at head; going back one revision turns those rows
    into plain initiators (the old vocabulary's only way to say it) and loses none."""
    url = databases.new()
    config = alembic_config(url)
    engine = seeded_at_head(url)

    def by_role() -> dict[str, int]:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT role, count(*) FROM event_participant GROUP BY role")
            ).all()
        return {str(role): int(n) for role, n in rows}

    at_head = by_role()
    assert at_head["alleged_initiator"] > 0
    command.downgrade(config, revision_before(config, "4a7e2d9c1b36"))
    back = by_role()
    assert "alleged_initiator" not in back
    assert back["initiator"] == at_head["initiator"] + at_head["alleged_initiator"]
    with engine.connect() as conn:
        one = conn.execute(text("SELECT id FROM event_participant LIMIT 1")).scalar_one()
        with pytest.raises(IntegrityError):
            conn.execute(
                text("UPDATE event_participant SET role = 'alleged_initiator' WHERE id = :id"),
                {"id": one},
            )
        conn.rollback()
    command.upgrade(config, "head")
    assert sum(by_role().values()) == sum(at_head.values())
    engine.dispose()


def test_facet_counts_up_and_down(databases: ThrowawayDatabases) -> None:
    """The upgrade fills the facet counts from the events already there (a database upgraded
    with data must not serve empty counts); the downgrade drops the three tables only."""
    url = databases.new()
    config = alembic_config(url)
    engine = seeded_at_head(url)
    command.downgrade(config, revision_before(config, "376e39f91e76"))
    assert not {"facet_event", "facet_count", "facet_actor_count"} & table_names(url)
    assert "event" in table_names(url)
    command.upgrade(config, "head")
    with writes.session_factory(engine)() as session:
        assert session.scalar(select(func.count()).select_from(FacetEvent)) == session.scalar(
            select(func.count()).select_from(Event).where(Event.deleted_at.is_(None))
        )
        assert counts.check(session) == {"facet_count": 0, "facet_actor_count": 0, "facet_event": 0}
    engine.dispose()


def test_facet_pairings_by_month_up_and_down(databases: ThrowawayDatabases) -> None:
    """The upgrade adds one actor's pairings by month to counts already there; the downgrade
    takes away those rows and no others."""
    url = databases.new()
    config = alembic_config(url)
    engine = seeded_at_head(url)
    with writes.session_factory(engine)() as session:
        at_head = session.scalar(select(func.count()).select_from(FacetActorCount))
        level = select(func.count()).where(FacetActorCount.given != 0, FacetActorCount.period > 0)
        assert session.scalar(level)
    command.downgrade(config, revision_before(config, "9c1f0e7a2b6d"))
    with writes.session_factory(engine)() as session:
        assert session.scalar(level) == 0
        differ = counts.check(session)
        assert differ["facet_actor_count"] > 0
        assert differ["facet_count"] == 0 and differ["facet_event"] == 0
    command.upgrade(config, "head")
    with writes.session_factory(engine)() as session:
        assert session.scalar(select(func.count()).select_from(FacetActorCount)) == at_head
        assert counts.check(session) == {"facet_count": 0, "facet_actor_count": 0, "facet_event": 0}
    engine.dispose()

"""`organisation=…&include_members=true` on an analysed database: a state's events count from
the day its membership starts, on SQLite as on PostgreSQL.

SQLite 3.40 answered `status IN (…)` on the membership's unique index (organisation, state,
status, start_on) followed by `start_on <= event date` wrongly once ANALYZE's statistics said
each (organisation, state, status) holds one row: a state whose membership has the status
`member` (the IN list's second value) passed for events before the membership began. The test
suite's databases are never analysed, and the seed is too small for the planner to read
memberships that way, so the bug showed only on data built by `bench.synth`, which analyses
what it loads.
"""

import datetime as dt

import yaml
from sqlalchemy import Engine, text

from tests import oracle
from tests.conftest import ON_POSTGRES, Writable
from tests.test_filter_paths import SOURCE, every_path

JOINED = dt.date(2024, 1, 1)

# ANALYZE's statistics of `bench.synth --events 10000 --seed 42` (the same at a million
# events for memberships): 26 memberships an organisation, one per (organisation, state,
# status), three participants an event. With them SQLite reads an event's participants, then
# each one's memberships off the unique index, as it does on the benchmark's data.
LARGE = {
    ("event_participant", "ix_event_participant_event_id"): "25294 3",
    ("membership", "ix_membership_state_period"): "1040 7 1",
    ("membership", "ix_membership_organisation_period"): "1040 26 2",
    ("membership", "sqlite_autoindex_membership_1"): "1040 26 1 1 1",
}


def analyse(engine: Engine, app_engine: Engine) -> None:
    """ANALYZE, and on SQLite the statistics of a larger database for the membership and
    participant tables; the app's connections are closed so that new ones read them."""
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
        if not ON_POSTGRES:
            for (table, index), stat in LARGE.items():
                conn.execute(
                    text("DELETE FROM sqlite_stat1 WHERE tbl = :t AND idx = :i"),
                    {"t": table, "i": index},
                )
                conn.execute(
                    text("INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES (:t, :i, :s)"),
                    {"t": table, "i": index, "s": stat},
                )
    app_engine.dispose()


def test_states_count_from_the_day_they_join(writable: Writable) -> None:
    states = [s["code"] for s in yaml.safe_load((oracle.SEED / "states.yaml").read_text("utf-8"))]
    body = {"code": "TEST-BLOC", "name": "A bloc made by a test", "kind": "economic_community"}
    made = writable.client.post(
        "/v1/organisations", json={**body, "sources": [SOURCE]}, headers=writable.auth()
    )
    assert made.status_code == 201, made.text
    for state in states:
        membership = {
            "organisation": "TEST-BLOC",
            "state": state,
            "status": "member",
            "start_on": JOINED.isoformat(),
            "start_precision": "day",
            "end": "open",
        }
        made = writable.client.post(
            "/v1/memberships", json={**membership, "sources": [SOURCE]}, headers=writable.auth()
        )
        assert made.status_code == 201, made.text
    analyse(writable.engine, writable.app.state.engine)

    ever = [e for e in oracle.events() if oracle.codes(e) & set(states)]
    since = oracle.in_order([e for e in ever if e["date"] >= JOINED])
    assert len(since) < len(ever), "the seed must hold events from before the states joined"
    members = every_path(writable, {"organisation": ["TEST-BLOC"], "include_members": True})
    assert sorted(members) == sorted(since)

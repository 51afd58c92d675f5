"""PostgreSQL: the actors of each event beside its words, in the same GIN index

Reviewed by hand. A page of `q=` with `state=` on PostgreSQL either walked the state's
participations in timeline order testing each event's words (slow when the state is in few of
the word's events), or read every match of the word and joined it to every participation of the
state. `event.search_actors` holds a token per state (`s<id>`) and per organisation (`o<id>`)
taking part in the event, in any role (the tokens of SQLite's index, app.timeline.search_index),
and `ix_event_search` becomes a GIN index of both columns: one index scan finds the events that
have the words AND the actors, skipping through the longer posting list by the shorter, and
only those events are read (app.timeline.planner).

The column is not generated (participants are another table): triggers on `event_participant`
set it again when an event's actors may have changed (a participant inserted or deleted, or its
event, state or organisation changed; not the copies of the event's date and public id). An
event's own deletion cascades to its participants, whose triggers then find no row to update.

Filled by rewriting `event` once (ALTER COLUMN ... TYPE ... USING, as adding the stored
tsvector did), not by an UPDATE of every row, which would leave a dead copy of each row behind
and the table twice as large until a VACUUM FULL. The search index is dropped first and built
once afterwards; the column's statistics are gathered, since the plan of a page depends on how
many events the planner expects to have both the words and the actors.

SQLite: nothing (its actors are in its full-text index, the previous revision).

Revision ID: 9e2b4d6f8a13
Revises: 7d3e9a1c4b58
Create Date: 2026-12-07 15:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "9e2b4d6f8a13"
down_revision: str | None = "7d3e9a1c4b58"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# An event's actors, each state and organisation taking part once ('' for none: a named group
# is no token). `python -m app.timeline.search_index` rebuilds the column with it.
FUNCTION = """
CREATE FUNCTION event_search_actors(event_id integer) RETURNS tsvector
LANGUAGE sql STABLE AS $$
    SELECT coalesce(array_to_tsvector(array_agg(DISTINCT CASE
        WHEN p.state_id IS NOT NULL THEN 's' || p.state_id
        ELSE 'o' || p.organisation_id END)), ''::tsvector)
    FROM event_participant p
    WHERE p.event_id = $1 AND (p.state_id IS NOT NULL OR p.organisation_id IS NOT NULL)
$$
"""

# Set again only when it changes, so a participant rewritten as it was costs no event row.
TRIGGER_FUNCTION = """
CREATE FUNCTION event_participant_search_actors() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ids integer[];
    one integer;
BEGIN
    IF TG_OP = 'INSERT' THEN
        ids := ARRAY[NEW.event_id];
    ELSIF TG_OP = 'DELETE' THEN
        ids := ARRAY[OLD.event_id];
    ELSIF OLD.event_id = NEW.event_id THEN
        ids := ARRAY[NEW.event_id];
    ELSE
        ids := ARRAY[OLD.event_id, NEW.event_id];
    END IF;
    FOREACH one IN ARRAY ids LOOP
        UPDATE event SET search_actors = actors
        FROM (SELECT event_search_actors(one) AS actors) AS now
        WHERE event.id = one AND event.search_actors IS DISTINCT FROM now.actors;
    END LOOP;
    RETURN NULL;
END
$$
"""

TRIGGERS = (
    "CREATE TRIGGER event_participant_search_actors_after_insert_or_delete"
    " AFTER INSERT OR DELETE ON event_participant"
    " FOR EACH ROW EXECUTE FUNCTION event_participant_search_actors()",
    "CREATE TRIGGER event_participant_search_actors_after_update"
    " AFTER UPDATE OF event_id, state_id, organisation_id ON event_participant FOR EACH ROW"
    " WHEN (OLD.event_id IS DISTINCT FROM NEW.event_id"
    " OR OLD.state_id IS DISTINCT FROM NEW.state_id"
    " OR OLD.organisation_id IS DISTINCT FROM NEW.organisation_id)"
    " EXECUTE FUNCTION event_participant_search_actors()",
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(FUNCTION)
    op.execute(TRIGGER_FUNCTION)
    op.execute("DROP INDEX ix_event_search")
    op.execute("ALTER TABLE event ADD COLUMN search_actors tsvector NOT NULL DEFAULT ''")
    # A USING that is not the column itself rewrites the table, each row with its value.
    op.execute(
        "ALTER TABLE event ALTER COLUMN search_actors TYPE tsvector USING event_search_actors(id)"
    )
    op.execute("CREATE INDEX ix_event_search ON event USING gin (search_vector, search_actors)")
    for trigger in TRIGGERS:
        op.execute(trigger)
    op.execute("ANALYZE event (search_actors)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER event_participant_search_actors_after_update ON event_participant")
    op.execute(
        "DROP TRIGGER event_participant_search_actors_after_insert_or_delete ON event_participant"
    )
    op.execute("DROP INDEX ix_event_search")
    op.execute("ALTER TABLE event DROP COLUMN search_actors")
    op.execute("CREATE INDEX ix_event_search ON event USING gin (search_vector)")
    op.execute("DROP FUNCTION event_participant_search_actors()")
    op.execute("DROP FUNCTION event_search_actors(integer)")

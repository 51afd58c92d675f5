"""SQLite: the actors of each event in the full-text index in timeline order

Reviewed by hand. A page of `q=` with `state=` read the words' matches in timeline order from
`event_fts_timeline` and tested each against the state, reading on until a page of them passed
(`app.timeline.service._keyed_rows`): for a state in few of a common word's events, many
matches per page. The index gets a second column, `actors`: a token per state (`s<id>`) and per
organisation (`o<id>`) taking part in the event, in any role. FTS5 then answers the words AND
the actors itself, merging both in rowid (timeline) order as it reads, and a page reads only the
matches that have the state (`app.timeline.search_index.matching`).

FTS5 cannot change one column of a row: the row is deleted and inserted again. The table is
contentless, so a row is deleted by giving back every value it was indexed with: the words are
the event's `search_text` (kept in step by the triggers on `event`), the actors are kept as
indexed in `event_fts_actors` (one row per indexed event, that is per live event), so that a
delete never depends on recomputing them from participants that have already changed. Triggers
on `event_participant` re-index an event when its list of actors changes. NOTE for later
migrations: a batch-mode rebuild of `event` or `event_participant` drops these triggers;
recreate them (TRIGGERS).

PostgreSQL: nothing.

Revision ID: 7d3e9a1c4b58
Revises: 5a1c7e3b9d20
Create Date: 2026-12-07 14:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "7d3e9a1c4b58"
down_revision: str | None = "5a1c7e3b9d20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The rowid of an event, as the previous revision computes it (app.timeline.search_index).
_KEY = "(CAST(julianday({row}.date) AS INTEGER) << 32) + {row}.id"
# An event's actors, as app.timeline.search_index.ACTORS writes them: each state and
# organisation once, sorted, separated by spaces; '' for none (a named group is no token).
ACTORS = (
    "(SELECT coalesce(group_concat(token, ' '), '') FROM (SELECT DISTINCT"
    " CASE WHEN p.state_id IS NOT NULL THEN 's' || p.state_id ELSE 'o' || p.organisation_id END"
    " AS token FROM event_participant p WHERE p.event_id = {event}"
    " AND (p.state_id IS NOT NULL OR p.organisation_id IS NOT NULL) ORDER BY token))"
)
_WORDS = (
    "json_each(CASE WHEN json_valid('[\"' || replace({row}.search_text, ' ', '\",\"') || '\"]')"
    " THEN '[\"' || replace({row}.search_text, ' ', '\",\"') || '\"]' ELSE '[]' END)"
)
_LISTED = f"SELECT value FROM {_WORDS.format(row='new')} WHERE value <> ''"  # noqa: S608

# An event row `new` that is live: indexed with its words and actors, its actors kept.
_ADD = (
    "INSERT INTO event_fts_timeline(rowid, search_text, actors)"
    f" SELECT {_KEY.format(row='new')}, new.search_text, {ACTORS.format(event='new.id')}"
    " WHERE new.deleted_at IS NULL;"
    " INSERT INTO event_fts_actors(event_id, actors)"
    f" SELECT new.id, {ACTORS.format(event='new.id')} WHERE new.deleted_at IS NULL;"
    f" INSERT OR IGNORE INTO event_fts_words(word) {_LISTED};"
)
# An event row `old` that was indexed (its actors are kept): its row deleted with the values it
# was indexed with.
_REMOVE = (
    "INSERT INTO event_fts_timeline(event_fts_timeline, rowid, search_text, actors)"  # noqa: S608
    f" SELECT 'delete', {_KEY.format(row='old')}, old.search_text, actors"
    " FROM event_fts_actors WHERE event_id = old.id;"
    " DELETE FROM event_fts_actors WHERE event_id = old.id;"
)


def _reindexed(event: str) -> str:
    """The indexed event `event` (an id expression) again, if its actors changed: its row
    deleted with the kept actors, inserted with the new ones. An event not indexed (deleted or
    soft-deleted) has no kept actors: nothing happens. Nor when its row is gone but its actors
    still kept: a cascade from the event's deletion removes its participants before the event's
    own trigger deletes its indexed row with the kept actors, which must stay as indexed."""
    actors = ACTORS.format(event="e.id")
    kept = ACTORS.format(event="event_fts_actors.event_id")
    indexed = (
        f" FROM event e JOIN event_fts_actors a ON a.event_id = e.id"
        f" WHERE e.id = {event} AND a.actors <> {actors}"
    )
    return (
        "INSERT INTO event_fts_timeline(event_fts_timeline, rowid, search_text, actors)"  # noqa: S608
        f" SELECT 'delete', {_KEY.format(row='e')}, e.search_text, a.actors{indexed};"
        " INSERT INTO event_fts_timeline(rowid, search_text, actors)"
        f" SELECT {_KEY.format(row='e')}, e.search_text, {actors}{indexed};"
        f" UPDATE event_fts_actors SET actors = {kept} WHERE event_id = {event}"
        f" AND actors <> {kept} AND EXISTS (SELECT 1 FROM event WHERE event.id = {event});"
    )


TRIGGERS = (
    f"CREATE TRIGGER event_fts_timeline_after_insert AFTER INSERT ON event BEGIN {_ADD} END",
    f"CREATE TRIGGER event_fts_timeline_after_delete AFTER DELETE ON event BEGIN {_REMOVE} END",
    "CREATE TRIGGER event_fts_timeline_after_update"
    f" AFTER UPDATE OF date, search_text, deleted_at ON event BEGIN {_REMOVE} {_ADD} END",
    "CREATE TRIGGER event_fts_timeline_participant_after_insert AFTER INSERT ON"
    f" event_participant BEGIN {_reindexed('new.event_id')} END",
    "CREATE TRIGGER event_fts_timeline_participant_after_delete AFTER DELETE ON"
    f" event_participant BEGIN {_reindexed('old.event_id')} END",
    "CREATE TRIGGER event_fts_timeline_participant_after_update"
    " AFTER UPDATE OF event_id, state_id, organisation_id ON event_participant"
    f" BEGIN {_reindexed('old.event_id')} {_reindexed('new.event_id')} END",
)
_NAMES = (
    "after_insert",
    "after_delete",
    "after_update",
    "participant_after_insert",
    "participant_after_delete",
    "participant_after_update",
)

# The previous revision's table and triggers, for the downgrade.
_OLD_INDEXED = f"SELECT {_KEY.format(row='new')}, new.search_text WHERE new.deleted_at IS NULL"
_OLD_ADD = (
    f"INSERT INTO event_fts_timeline(rowid, search_text) {_OLD_INDEXED};"
    f" INSERT OR IGNORE INTO event_fts_words(word) {_LISTED};"
)
_OLD_REMOVE = (
    "INSERT INTO event_fts_timeline(event_fts_timeline, rowid, search_text)"
    f" SELECT 'delete', {_KEY.format(row='old')}, old.search_text WHERE old.deleted_at IS NULL;"
)
_OLD_TRIGGERS = (
    f"CREATE TRIGGER event_fts_timeline_after_insert AFTER INSERT ON event BEGIN {_OLD_ADD} END",
    f"CREATE TRIGGER event_fts_timeline_after_delete AFTER DELETE ON event BEGIN {_OLD_REMOVE} END",
    "CREATE TRIGGER event_fts_timeline_after_update"
    f" AFTER UPDATE OF date, search_text, deleted_at ON event BEGIN {_OLD_REMOVE} {_OLD_ADD} END",
)
_TOKENIZER = "tokenize='unicode61 remove_diacritics 2'"


def _drop_index() -> None:
    for name in _NAMES:
        op.execute(f"DROP TRIGGER IF EXISTS event_fts_timeline_{name}")
    op.execute("DROP TABLE IF EXISTS event_fts_timeline")


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    _drop_index()
    # The tokenizer is event_fts's: both must cut the stored words alike (app/search.py).
    op.execute(
        "CREATE VIRTUAL TABLE event_fts_timeline USING fts5(search_text, actors, content='',"
        f" {_TOKENIZER})"
    )
    op.execute("CREATE TABLE event_fts_actors (event_id INTEGER PRIMARY KEY, actors TEXT NOT NULL)")
    op.execute(
        "INSERT INTO event_fts_actors(event_id, actors)"  # noqa: S608
        f" SELECT id, {ACTORS.format(event='event.id')} FROM event WHERE deleted_at IS NULL"
    )
    # In key order: FTS5 then appends to its pending terms instead of flushing them whenever a
    # key is lower than the last.
    key = _KEY.format(row="event")
    op.execute(
        "INSERT INTO event_fts_timeline(rowid, search_text, actors)"  # noqa: S608
        f" SELECT {key}, event.search_text, a.actors FROM event"
        f" JOIN event_fts_actors a ON a.event_id = event.id ORDER BY {key}"
    )
    for trigger in TRIGGERS:
        op.execute(trigger)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    _drop_index()
    op.execute("DROP TABLE IF EXISTS event_fts_actors")
    op.execute(
        f"CREATE VIRTUAL TABLE event_fts_timeline USING fts5(search_text, content='', {_TOKENIZER})"
    )
    for trigger in _OLD_TRIGGERS:
        op.execute(trigger)
    key = _KEY.format(row="event")
    op.execute(
        "INSERT INTO event_fts_timeline(rowid, search_text)"  # noqa: S608
        f" SELECT {key}, search_text FROM event WHERE deleted_at IS NULL ORDER BY {key}"
    )

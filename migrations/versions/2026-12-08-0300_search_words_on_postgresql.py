"""PostgreSQL: the list of words in use, so that a word's prefix is searched as the words it begins

Reviewed by hand. Every word of `q=` is a prefix (`tinzaouat` finds `tinzaouaten`). For a prefix,
the GIN index collects every match of every lexeme it begins before it can intersect them with
the other words: `sakolo city` at 1M events gathered the 128,000 events of `city` to find the
1,295 that also have `sakolo` (30 ms in the index alone). For whole lexemes it skips through
the longer list by the shorter one (1.3 ms). SQLite already lists its words (`event_fts_words`)
for the same reason.

`search_word` holds every lexeme of every event's `search_vector`, kept by a trigger on `event`
in the writer's own transaction, and never removed: a word no event has any more finds nothing.
It has no unique key: with one, a writer adding a new word would wait for any other open
transaction that added the same word, and writers must not wait on each other
(tests/test_feed_concurrency.py). A word two writers add at once is listed twice, which only
costs a row; a word is added only where the writer sees none, and a word committed before the
writer looked is committed before the writer's event, so a snapshot that sees the event sees
the word.
`search_exact(words)` rewrites a prefix query into the words each prefix begins, OR-ed, where
they are 1 to 64 (more, or none, and the prefix stays). Called inside the statement that reads
the matches, it sees that statement's snapshot, so a word a writer added in the same commit as
its event is there exactly when the event is. The matches are the same as the prefix query's
while the list holds every lexeme in use; `python -m app.timeline.search_index --check` checks
that, and an archive restore (which loads with the trigger off) fills the list once.

SQLite: nothing.

Revision ID: 8b4f2c7e1d53
Revises: 6d2e8b4f1a39
Create Date: 2026-12-08 03:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "8b4f2c7e1d53"
down_revision: str | None = "6d2e8b4f1a39"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = 'CREATE TABLE search_word (word text COLLATE "C" NOT NULL)'
# COLLATE "C": a prefix's words are one range of the index, in byte order.
INDEX = "CREATE INDEX ix_search_word_word ON search_word (word)"

TRIGGER_FUNCTION = """
CREATE FUNCTION event_search_words() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO search_word (word)
    SELECT new_word.lexeme FROM unnest(NEW.search_vector) AS new_word
    WHERE NOT EXISTS (SELECT 1 FROM search_word WHERE word = new_word.lexeme);
    RETURN NULL;
END
$$
"""

TRIGGER = (
    "CREATE TRIGGER event_search_words_after_insert_or_update"
    " AFTER INSERT OR UPDATE OF search_text ON event"
    " FOR EACH ROW EXECUTE FUNCTION event_search_words()"
)

# The lexemes of `words` are its prefixes as to_tsquery cut them (same parser, same
# dictionary). A lexeme with a backslash would be quoted in the E'' form, which a tsquery does
# not read: such a prefix stays a prefix.
FUNCTION = """
CREATE FUNCTION search_exact(words text) RETURNS tsquery
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    rewritten tsquery := to_tsquery('simple', words);
    prefix text;
    begun text[];
BEGIN
    FOREACH prefix IN ARRAY tsvector_to_array(to_tsvector('simple', words)) LOOP
        begun := ARRAY(
            SELECT DISTINCT word FROM search_word
            WHERE word >= prefix AND word < prefix || chr(1114111)
            ORDER BY word LIMIT 65
        );
        IF cardinality(begun) BETWEEN 1 AND 64
            AND NOT EXISTS (SELECT 1 FROM unnest(begun) AS w WHERE strpos(w, E'\\\\') > 0)
        THEN
            rewritten := ts_rewrite(
                rewritten,
                (quote_literal(prefix) || ':*')::tsquery,
                array_to_string(ARRAY(SELECT quote_literal(w) FROM unnest(begun) AS w), ' | ')
                    ::tsquery
            );
        END IF;
    END LOOP;
    RETURN rewritten;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(TABLE)
    op.execute(
        "INSERT INTO search_word (word) SELECT DISTINCT lexeme FROM event, unnest(search_vector)"
    )
    op.execute(INDEX)
    op.execute(TRIGGER_FUNCTION)
    op.execute(TRIGGER)
    op.execute(FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION search_exact(text)")
    op.execute("DROP TRIGGER event_search_words_after_insert_or_update ON event")
    op.execute("DROP FUNCTION event_search_words()")
    op.execute("DROP TABLE search_word")

"""PostgreSQL: the words that can score above a single occurrence, for ranking one word

Reviewed by hand. A page of `q=` in relevance order ranked every match with ts_rank, reading
each one's row of `event` for its tsvector: for a common word, tens of thousands of rows
visited to return fifty. For one word (a prefix: `word:*`) with the default weights and no
normalisation, ts_rank depends only on how many times the lexemes that the word starts occur in
the event, and one occurrence scores the lowest, the same for every event. So every match is
in one of two tiers: above, where the word occurs more than once, and the floor, where it
occurs once and which is in timeline order among itself (the ranking's tie order).

`event.search_repeats` lets an index tell the tiers apart. It holds, from the event's tsvector:
- every lexeme that occurs more than once;
- the longest common prefix of each two lexemes next to each other in byte order: a word that
  starts two distinct lexemes starts both of some adjacent pair, so it starts their common
  prefix, and a word that starts that prefix starts both lexemes.
A word of three or more characters is the prefix of a lexeme of `search_repeats` exactly when
it occurs more than once in the event; shorter entries are left out (a word that short is
ranked in full, app.timeline.service), since they would put most events in the upper tier
of every short word.

A STORED generated column, so it cannot drift from the text. It cannot be computed from
`search_vector` (a generated column may not read another), so it parses the text a second
time. Filled by rewriting `event` once; its GIN index is built afterwards.

SQLite: nothing (FTS5's bm25 ranks from its own index).

Revision ID: 3c8f1a6d9b27
Revises: 9e2b4d6f8a13
Create Date: 2026-12-08 01:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "3c8f1a6d9b27"
down_revision: str | None = "9e2b4d6f8a13"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Lexemes of tsvector are kept sorted by their bytes (COLLATE "C"); the loop reads them in
# that order so that prefixes shared by any two lexemes are shared by an adjacent pair.
FUNCTION = """
CREATE FUNCTION search_repeats(doc tsvector) RETURNS tsvector
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    prev text;
    word text;
    occurrences integer;
    shared integer;
    found text[] := '{}';
BEGIN
    FOR word, occurrences IN
        SELECT lexeme, cardinality(positions) FROM unnest(doc) ORDER BY lexeme COLLATE "C"
    LOOP
        IF occurrences > 1 AND length(word) >= 3 THEN
            found := found || word;
        END IF;
        IF prev IS NOT NULL THEN
            shared := 0;
            WHILE shared < least(length(word), length(prev))
                AND substr(word, shared + 1, 1) = substr(prev, shared + 1, 1)
            LOOP
                shared := shared + 1;
            END LOOP;
            IF shared >= 3 THEN
                found := found || left(word, shared);
            END IF;
        END IF;
        prev := word;
    END LOOP;
    RETURN array_to_tsvector(found);
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(FUNCTION)
    op.execute(
        "ALTER TABLE event ADD COLUMN search_repeats tsvector"
        " GENERATED ALWAYS AS (search_repeats(to_tsvector('simple', search_text))) STORED"
    )
    op.execute("CREATE INDEX ix_event_search_repeats ON event USING gin (search_repeats)")
    op.execute("ANALYZE event (search_repeats)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX ix_event_search_repeats")
    op.execute("ALTER TABLE event DROP COLUMN search_repeats")
    op.execute("DROP FUNCTION search_repeats(tsvector)")

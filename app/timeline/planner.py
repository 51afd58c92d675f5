"""How a timeline query's events are read: the plan, decided in one place (`plan`).

A query's filters, once checked and resolved against the database (`Filters`: codes to ids,
partial dates to days, words to the engine's query), leave three choices, which `PagePlan`
names:

- `driver`: the table a page is read from. One state, pair of states (`between=`),
  organisation or tag is read off its own (key, date, public_id) index in page order, which
  stops after a page; otherwise `event` is read in timeline order and each row tested.
- `text`: how `q=` is matched (`statements.TextMode`). A SQLite page in timeline order reads
  the matches in that order from an index keyed so (`search_index`), as many as it needs.
  Otherwise it depends on how many events have the words: look them all up, or walk the
  page's order testing each row.
- `actors`: the states and organisations a page's matches must also have, asked of the text
  index with the words, where a filter means exactly that (`_actors`): on SQLite's index in
  timeline order; on PostgreSQL when the planner expects few events to have both, which are
  then read off `event` through the GIN index of both and sorted, whatever the driver.
- `counts_itself`: a PostgreSQL page of words and dates alone, expected to have few matches
  (fewer the fewer events there are: `few_matches`), counts them as it reads them; if they
  were many after all, `PagePlan.recounted` plans it again and the page is read the other way.

Pure: what a plan may need from the database, how many events have the words (and the
actors), and on PostgreSQL how many events there are, is passed in as functions that `plan`
calls only when its choice depends on them.
The service (`service._plan`) resolves the filters and runs the plan's statements.
"""

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from app.timeline import search_index, statements

# PostgreSQL, a page of words and actors: reading the m events that have both costs about m
# rows read; walking the actors' n events in page order, testing the words, about 51 * n / m rows
# walked (a default page and the row that says whether another follows), each dearer than a row
# read. This is 51 times that ratio, as measured (bench/README.md).
WALK_COST = 70

# PostgreSQL, a page of words and dates alone, m of the N events having them: reading the m
# matches first costs about m rows read; walking the timeline and testing each row, about
# 51 * N / m rows walked. The two cost the same where m * m is some tens of times N, more
# times at more events (bench/README.md). A page reads its matches first while
# m * m <= READ_FIRST * N, below where they cross at every size measured: a walk also costs
# more where the matches are bunched away from the page's start, a read never does
# (`few_matches`).
READ_FIRST = 25

# Groups of actor tokens (`search_index.state_token`, `organisation_token`): an event has every
# group, each by any of its tokens.
Actors = tuple[tuple[str, ...], ...]


@dataclass(frozen=True, slots=True)
class Filters:
    """A query's filters checked and resolved against the database: codes to ids, partial dates
    to days, words to the engine's query (`service._filters`)."""

    start: dt.date | None = None
    end: dt.date | None = None
    states: tuple[int, ...] = ()
    pair: tuple[int, ...] = ()  # the states of `between=`
    actor: tuple[tuple[int, ...], tuple[int, ...]] | None = None  # (state ids, organisation ids)
    target: tuple[tuple[int, ...], tuple[int, ...]] | None = None
    organisations: tuple[int, ...] = ()
    members: bool = False  # include_members
    kinds: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    words: str | None = None  # `q=` in the engine's query syntax

    @property
    def others(self) -> bool:
        """Whether any filter but the dates and the words is set."""
        return any(
            (
                self.states,
                self.pair,
                self.actor,
                self.target,
                self.organisations,
                self.kinds,
                self.categories,
                self.tags,
            )
        )


@dataclass(frozen=True, slots=True)
class Driver:
    """The table a page is read from, when one filter names a single state, pair of states,
    organisation or tag.

    Reading (state_id, date, public_id) in index order and joining each row to its event stops
    after one page; reading events and testing `id IN (events of the state)` reads and sorts
    every event of the state first (bench/README.md).
    """

    kind: statements.DriverKind
    # The state or organisation id, or the tag, read in index order; for a pair, the lower of
    # its two state ids, and `second` the higher.
    value: int | str
    second: int | None = None


@dataclass(frozen=True, slots=True)
class PagePlan:
    """How a query's events are read: its filters and the choices `plan` made for them. The
    statement is built once per `shape`; `params` are the values bound to it."""

    filters: Filters
    # The table a page is read from in index order; None reads `event` in timeline order.
    driver: Driver | None = None
    # How `q=` is matched; None without `q=`.
    text: statements.TextMode | None = None
    # The page counts the words' matches as it reads them (`statements.few_page_documents`).
    counts_itself: bool = False
    # A page that counts itself: the most matches it reads whole (`few_matches`); it reads
    # one more, to know when there were more, and then walks (`recounted`).
    few: int = 0
    # The actors' tokens the matches are read with, each group any of its tokens: in SQLite's
    # query ("fts_keys", `search_index.matching`), or PostgreSQL's ("few",
    # `search_index.actors_query`). The page's statement tests its filters all the same.
    actors: Actors = ()

    def unkeyed(self) -> "PagePlan":
        """SQLite: the plan for a page that read more than FEW_MATCHES matches in timeline
        order without filling itself (other filters keep few of them), as if it had counted
        them."""
        return replace(self, text=_many_on_sqlite(self.filters, self.driver), actors=())

    def recounted(self, matches: int) -> "PagePlan":
        """The plan for a page that counted its matches itself, once their number is known:
        read as "few" (its rows stand) or, past `few`, again as "many"."""
        text: statements.TextMode = "few" if matches <= self.few else "many"
        return replace(self, text=text, counts_itself=False)

    @property
    def shape(self) -> statements.Shape:
        f = self.filters
        kind = self.driver.kind if self.driver else None
        # PostgreSQL: the filters the actors' tokens answer are not tested again, row by row
        # off the participants (each test read every participation of its states).
        asked = bool(self.actors) and self.text in ("few", "many")
        return statements.Shape(
            start=f.start is not None,
            end=f.end is not None,
            states=bool(f.states) and kind != "state" and not asked,
            also=0 if asked else len(self._also()),
            actor=f.actor is not None,
            target=f.target is not None,
            organisations=(
                bool(f.organisations) and kind != "organisation" and not (asked and not f.members)
            ),
            members=f.members,
            kinds=bool(f.kinds),
            categories=bool(f.categories),
            tags=bool(f.tags) and kind != "tag",
            text=self.text,
            driver=kind,
            actors=asked,
            exact=self.text == "few" and f.words is not None and several_words(f.words),
        )

    def _also(self) -> tuple[int, ...]:
        # Every state of `between=` is tested on each row, but the pair the driver reads.
        driver = self.driver
        if driver is not None and driver.kind == "pair":
            return tuple(s for s in self.filters.pair if s not in (driver.value, driver.second))
        return self.filters.pair

    @property
    def params(self) -> dict[str, Any]:
        """The values bound to the statements of `shape`, under the names `statements` uses (a
        new dict each time: a caller adds its page's own)."""
        f = self.filters
        params: dict[str, Any] = {
            "start": f.start,
            "end": f.end,
            "states": f.states,
            "organisations": f.organisations,
            "kinds": f.kinds,
            "categories": f.categories,
            "tags": f.tags,
            "words": f.words,
            "actors": search_index.actors_query(self.actors),
        }
        for i, state_id in enumerate(self._also()):
            params[f"also_{i}"] = state_id
        for role, ids in (("actor", f.actor), ("target", f.target)):
            if ids is not None:
                params[f"{role}_states"], params[f"{role}_orgs"] = ids
        if self.driver is not None:
            params["driver"], params["driver_b"] = self.driver.value, self.driver.second
        return params


def plan(
    filters: Filters,
    *,
    dialect: str,
    ranked: bool = False,
    driven: bool = False,
    one_page: bool = False,
    matches: Callable[[], int] | None = None,
    events: Callable[[], int] | None = None,
    actor_matches: Callable[[Actors], tuple[int, int]] | None = None,
) -> PagePlan:
    """The plan for reading `filters`' events on `dialect` ("postgresql" or "sqlite").

    `ranked`: best matches first (`order=relevance`, read off `event`). `driven`: paged in
    timeline order, so a driver's index may give that order (a page, an export's batches).
    `one_page`: a page, not a whole export, which may count its matches itself. `matches`: how
    many events have the words (up to FEW_MATCHES + 1; PostgreSQL's planner may estimate them),
    called only when the choice of `text` depends on it. `events`: how many events there are,
    as PostgreSQL's planner estimates them, asked with `matches` for a page of words and dates
    alone. `actor_matches`: how many events have the words and these actors, and these actors
    alone, as PostgreSQL's planner estimates them."""
    driver = _driver(filters) if driven else None
    text: statements.TextMode | None = None
    actors: Actors = ()
    # A PostgreSQL page of words and dates alone: read first up to fewer matches the fewer
    # events there are. Expected to be few, the page counts them as it reads them, and is read
    # again the other way if the estimate was low (`PagePlan.recounted`).
    words_alone = (
        one_page
        and dialect == "postgresql"
        and filters.words is not None
        and not ranked
        and not filters.others
    )
    few = statements.FEW_MATCHES
    if words_alone:
        if events is None:
            raise ValueError("this plan depends on how many events there are")
        few = few_matches(events())
    if filters.words is not None:
        groups = _actors(filters) if driven and not ranked else ()
        if dialect == "postgresql" and groups:
            if actor_matches is None:
                raise ValueError("this plan depends on how many events have the words and actors")
            both, alone = actor_matches(groups)
            if both <= statements.FEW_MATCHES and both * both <= WALK_COST * alone:
                # Read off `event` through the index of both, then sorted.
                driver, text, actors = None, "few", groups
            else:
                # A walk reads fewer rows than both matches; the word's own, which include
                # them, are more still: no second estimate.
                text = "many"
        if text is None:
            text = _text_mode(
                filters, dialect, driver, driven, ranked=ranked, matches=matches, few=few
            )
        if text == "fts_keys":
            actors = groups
    if words_alone and text == "few":
        return PagePlan(filters, driver, text, counts_itself=True, few=few)
    return PagePlan(filters, driver, text, actors=actors)


def several_words(words: str) -> bool:
    """PostgreSQL: whether a query (`service._engine_words`: "word:* & word:*") has more than
    one word."""
    return " & " in words


def few_matches(events: int) -> int:
    """PostgreSQL: the most matches a page of words and dates alone reads first, among `events`
    events (`READ_FIRST`); more, and it walks the timeline. At most FEW_MATCHES, where the rule
    puts it at the most events measured: no more was measured, and a page whose matches were
    estimated low reads this many before it walks."""
    return min(statements.FEW_MATCHES, math.isqrt(READ_FIRST * max(events, 0)))


def _actors(f: Filters) -> Actors:
    """The filters that mean "one of these states or organisations takes part, in any role",
    as groups of the index's actor tokens: `state=` (any of them), each state of `between=`,
    and `organisation=` (any of them) unless `include_members` (membership on the event's
    date is not in the index). Roles (`actor=`, `target=`) are not either."""
    groups = []
    if f.states:
        groups.append(tuple(search_index.state_token(s) for s in dict.fromkeys(f.states)))
    groups.extend((search_index.state_token(s),) for s in dict.fromkeys(f.pair))
    if f.organisations and not f.members:
        organisations = dict.fromkeys(f.organisations)
        groups.append(tuple(search_index.organisation_token(o) for o in organisations))
    return tuple(groups)


def _driver(f: Filters) -> Driver | None:
    if len(f.states) == 1:
        return Driver("state", f.states[0])
    if f.pair:
        # Any two states of `between=` narrow the page to their shared events; the others, if
        # any, are tested on each row.
        a, b = sorted(f.pair[:2])
        return Driver("pair", a, b)
    if len(f.organisations) == 1 and not f.members:
        return Driver("organisation", f.organisations[0])
    if len(f.tags) == 1:
        return Driver("tag", f.tags[0])
    return None


def _text_mode(
    f: Filters,
    dialect: str,
    driver: Driver | None,
    driven: bool,
    *,
    ranked: bool,
    matches: Callable[[], int] | None,
    few: int,
) -> statements.TextMode:
    sqlite = dialect != "postgresql"
    if sqlite and driven and not ranked:
        # Paged in timeline order: the matches are read in that order until the page is full,
        # whatever their number (`service._keyed_rows`), with no count first.
        return "fts_keys"
    if sqlite and (ranked or (driver is None and f.others)):
        # Ranked: FTS5 scores the matches whatever their number. Other filters: see
        # `_many_on_sqlite`.
        return "fts"
    if matches is None:
        raise ValueError("this plan depends on how many events have the words")
    if matches() <= few:
        return "fts" if sqlite else "few"
    return _many_on_sqlite(f, driver) if sqlite else "many"


def _many_on_sqlite(f: Filters, driver: Driver | None) -> statements.TextMode:
    # Other filters read off `event` (a category, say): walking the timeline could pass many
    # events before one passes both, so the matches are looked up instead.
    return "fts" if driver is None and f.others else "fts_walk"

"""The choices of the timeline's page planner (app/timeline/planner.py), for a handful of filter
combinations on each database. `plan` is pure: these need no database, only the number of
matches it would be told, and a counter that fails when `plan` should not have asked."""

import dataclasses
import datetime as dt
from collections.abc import Callable

import pytest

from app.timeline import statements
from app.timeline.planner import (
    READ_FIRST,
    WALK_COST,
    Actors,
    Driver,
    Filters,
    PagePlan,
    few_matches,
    plan,
)

FEW = statements.FEW_MATCHES
WORDS = "drone:*"
# Events among which a PostgreSQL page of words alone reads as many matches first as any plan.
MANY_EVENTS = FEW * FEW // READ_FIRST


def never() -> int:
    raise AssertionError("the plan did not need to count the matches")


def told(matches: int) -> tuple[list[int], Callable[[], int]]:
    """A counter answering `matches`, and the list of its answers (to see whether it was asked)."""
    asked: list[int] = []

    def count() -> int:
        asked.append(matches)
        return matches

    return asked, count


def never_estimated(_actors: Actors) -> tuple[int, int]:
    raise AssertionError("the plan did not need to estimate the words' and actors' matches")


def too_many(_actors: Actors) -> tuple[int, int]:
    """PostgreSQL's estimate of the words' and actors' matches: more than a plan reads first."""
    return FEW + 1, 10 * FEW


def test_a_plain_page_reads_event_in_timeline_order() -> None:
    page = plan(Filters(), dialect="postgresql", driven=True, one_page=True, matches=never)
    assert page == PagePlan(Filters(), driver=None, text=None, counts_itself=False)
    assert page.shape == statements.Shape()


@pytest.mark.parametrize(
    ("filters", "driver"),
    [
        (Filters(states=(7,)), Driver("state", 7)),
        (Filters(states=(7, 8)), None),  # two states: events of either, no single index
        (Filters(pair=(9, 3, 5)), Driver("pair", 3, 9)),  # the first two, lower id first
        (Filters(organisations=(4,)), Driver("organisation", 4)),
        (Filters(organisations=(4,), members=True), None),  # members join through memberships
        (Filters(tags=("drones",)), Driver("tag", "drones")),
        (Filters(tags=("drones", "veto")), None),
        (Filters(states=(7,), tags=("drones",)), Driver("state", 7)),  # a state first
    ],
)
def test_one_named_state_pair_organisation_or_tag_drives_the_page(
    filters: Filters, driver: Driver | None
) -> None:
    for dialect in ("postgresql", "sqlite"):
        assert plan(filters, dialect=dialect, driven=True).driver == driver
        # Not paged in timeline order (facets, `filtered`, relevance): read off `event`.
        assert plan(filters, dialect=dialect).driver is None


def test_the_driver_s_own_filter_leaves_the_shape_and_the_other_states_stay() -> None:
    by_state = plan(Filters(states=(7,), kinds=("incident",)), dialect="sqlite", driven=True)
    assert by_state.shape == statements.Shape(kinds=True, driver="state")
    assert by_state.params["driver"] == 7
    # `between=` of three states: the pair drives, the third is tested on each row.
    between = plan(Filters(pair=(9, 3, 5)), dialect="sqlite", driven=True)
    assert between.shape == statements.Shape(also=1, driver="pair")
    assert (between.params["driver"], between.params["driver_b"]) == (3, 9)
    assert between.params["also_0"] == 5


@pytest.mark.parametrize(
    ("filters", "ranked", "driven"),
    [
        (Filters(words=WORDS), True, False),  # relevance: FTS5 scores every match anyway
        (Filters(words=WORDS, categories=("veto",)), False, False),  # other filters, no driver
        (Filters(words=WORDS, tags=("drones",)), False, False),  # a facet or feed: no driver
    ],
)
def test_sqlite_looks_the_matches_up_without_counting_them(
    filters: Filters, ranked: bool, driven: bool
) -> None:
    page = plan(filters, dialect="sqlite", ranked=ranked, driven=driven, matches=never)
    assert page.text == "fts"
    assert not page.counts_itself


@pytest.mark.parametrize(
    ("filters", "unkeyed"),
    [
        (Filters(words=WORDS), "fts_walk"),
        (Filters(words=WORDS, start=dt.date(2025, 1, 1)), "fts_walk"),  # dates alone
        (Filters(words=WORDS, states=(7,)), "fts_walk"),  # walk the state's index
        (Filters(words=WORDS, states=(1, 2)), "fts"),  # other filters, no driver
        (Filters(words=WORDS, categories=("veto",)), "fts"),
    ],
)
def test_sqlite_pages_read_the_matches_in_timeline_order_without_counting_them(
    filters: Filters, unkeyed: str
) -> None:
    """A page (or an export's batch) reads the matches in timeline order, as many as it needs
    (`service._keyed_rows`); one that reads too many without filling falls back to the plan
    for many matches."""
    for one_page in (True, False):
        page = plan(filters, dialect="sqlite", driven=True, one_page=one_page, matches=never)
        assert (page.text, page.counts_itself) == ("fts_keys", False)
        assert page.unkeyed().text == unkeyed


@pytest.mark.parametrize(
    ("filters", "actors"),
    [
        (Filters(words=WORDS), ()),
        (Filters(words=WORDS, states=(7,)), (("s7",),)),
        (Filters(words=WORDS, states=(7, 8, 7)), (("s7", "s8"),)),  # any of them
        (Filters(words=WORDS, pair=(9, 3, 5)), (("s9",), ("s3",), ("s5",))),  # each of them
        (Filters(words=WORDS, organisations=(4, 6)), (("o4", "o6"),)),
        # Membership on the event's date, and roles, are not in the index.
        (Filters(words=WORDS, organisations=(4,), members=True), ()),
        (Filters(words=WORDS, actor=((7,), ())), ()),
        (Filters(words=WORDS, target=((7,), (4,))), ()),
        (
            Filters(words=WORDS, states=(7,), actor=((8,), ()), tags=("drones",)),
            (("s7",),),
        ),
    ],
)
def test_sqlite_pages_ask_the_index_for_the_states_and_organisations_it_holds(
    filters: Filters, actors: tuple[tuple[str, ...], ...]
) -> None:
    """A page read in timeline order asks the index for the words and the actors that a filter
    means exactly (any role); the page's statement tests every filter all the same. Nowhere
    else: PostgreSQL, a ranked page, a plan that fell back to the other reads."""
    page = plan(filters, dialect="sqlite", driven=True, one_page=True, matches=never)
    assert page.actors == actors
    assert page.shape == dataclasses.replace(page, actors=()).shape
    assert page.unkeyed().actors == ()
    assert plan(filters, dialect="sqlite", ranked=True, matches=never).actors == ()
    assert plan(filters, dialect="sqlite", matches=lambda: FEW).actors == ()
    on_postgresql = plan(
        filters, dialect="postgresql", driven=True, matches=lambda: FEW, actor_matches=too_many
    )
    assert on_postgresql.actors == ()


@pytest.mark.parametrize(
    ("filters", "matches", "text"),
    [
        (Filters(words=WORDS), FEW, "fts"),
        (Filters(words=WORDS), FEW + 1, "fts_walk"),
        (Filters(words=WORDS, start=dt.date(2025, 1, 1)), FEW + 1, "fts_walk"),  # dates alone
    ],
)
def test_sqlite_walks_for_many_matches(filters: Filters, matches: int, text: str) -> None:
    """Not paged in timeline order (facets, `filtered`): the count chooses."""
    asked, count = told(matches)
    page = plan(filters, dialect="sqlite", matches=count)
    assert (page.text, page.counts_itself) == (text, False)
    assert asked == [matches]


@pytest.mark.parametrize(
    ("filters", "one_page", "matches", "text", "counts_itself"),
    [
        # Words and dates alone, expected few: the page counts them as it reads them.
        (Filters(words=WORDS), True, 10, "few", True),
        (Filters(words=WORDS, end=dt.date(2025, 6, 30)), True, FEW, "few", True),
        (Filters(words=WORDS), True, FEW + 1, "many", False),
        # An export's batches do not: they read the matches first or walk.
        (Filters(words=WORDS), False, 10, "few", False),
        # Another filter: the matches are read first, and tested against the driver's rows.
        (Filters(words=WORDS, kinds=("incident",)), True, 10, "few", False),
        (Filters(words=WORDS, tags=("drones",)), True, 10, "few", False),
        # A state's with the words too many to read first: walked, whatever the words' own.
        (Filters(words=WORDS, states=(7,)), True, 10, "many", False),
        (Filters(words=WORDS, states=(7,)), True, FEW + 1, "many", False),
    ],
)
def test_postgresql_reads_few_matches_first_and_walks_for_many(
    filters: Filters, one_page: bool, matches: int, text: str, counts_itself: bool
) -> None:
    _, count = told(matches)
    page = plan(
        filters,
        dialect="postgresql",
        driven=True,
        one_page=one_page,
        matches=count,
        events=lambda: MANY_EVENTS,
        actor_matches=too_many,
    )
    assert (page.text, page.counts_itself) == (text, counts_itself)


@pytest.mark.parametrize(
    ("events", "few"),
    [
        (MANY_EVENTS, FEW),
        (10 * MANY_EVENTS, FEW),  # never more than any plan reads first
        (100_000, 1_581),
        (10_000, 500),
        (158, 62),
        (0, 0),
    ],
)
def test_a_postgresql_page_of_words_alone_reads_fewer_matches_first_among_fewer_events(
    events: int, few: int
) -> None:
    """Walking costs about N / m rows tested, reading m: a page of words and dates alone reads
    its m matches first while m * m <= READ_FIRST * N (`few_matches`), among N events as the
    planner estimates them. The old fixed limit read up to FEW_MATCHES at any N."""
    assert few_matches(events) == few
    for filters in (Filters(words=WORDS), Filters(words=WORDS, start=dt.date(2025, 1, 1))):
        for matches, text in ((few, "few"), (few + 1, "many")):
            asked, count = told(matches)
            page = plan(
                filters,
                dialect="postgresql",
                driven=True,
                one_page=True,
                matches=count,
                events=lambda: events,
            )
            assert (page.text, page.counts_itself) == (text, text == "few")
            assert page.few == (few if text == "few" else 0)
            assert asked == [matches]
    # Another filter, an export's batches, a ranked page: FEW_MATCHES whatever N, not asked.
    for filters, one_page, ranked in (
        (Filters(words=WORDS, kinds=("incident",)), True, False),
        (Filters(words=WORDS), False, False),
        (Filters(words=WORDS), True, True),
    ):
        page = plan(
            filters,
            dialect="postgresql",
            driven=True,
            ranked=ranked,
            one_page=one_page,
            matches=lambda: FEW,
            events=never,
        )
        assert (page.text, page.counts_itself) == ("few", False)


def test_sqlite_never_asks_how_many_events_there_are() -> None:
    for driven, one_page in ((True, True), (False, False)):
        page = plan(
            Filters(words=WORDS),
            dialect="sqlite",
            driven=driven,
            one_page=one_page,
            matches=lambda: FEW,
            events=never,
        )
        assert page.text == ("fts_keys" if driven else "fts")


@pytest.mark.parametrize(
    ("filters", "actors", "shape"),
    [
        (Filters(words=WORDS, states=(7,)), (("s7",),), statements.Shape()),
        (Filters(words=WORDS, states=(7, 8, 7)), (("s7", "s8"),), statements.Shape()),
        (Filters(words=WORDS, pair=(9, 3, 5)), (("s9",), ("s3",), ("s5",)), statements.Shape()),
        (Filters(words=WORDS, organisations=(4, 6)), (("o4", "o6"),), statements.Shape()),
        # Tested by the page's statement: what the tokens do not say.
        (
            Filters(words=WORDS, states=(7,), actor=((8,), ()), tags=("drones",)),
            (("s7",),),
            statements.Shape(actor=True, tags=True),
        ),
        (
            Filters(words=WORDS, states=(7,), organisations=(4,), members=True),
            (("s7",),),
            statements.Shape(organisations=True, members=True),
        ),
    ],
)
def test_postgresql_reads_the_few_matches_of_words_and_actors_through_their_index(
    filters: Filters, actors: Actors, shape: statements.Shape
) -> None:
    """Expected few, and fewer than a walk of the actors' events would read: the matches of
    both are read off `event` through the GIN index of both (no driver), and the filters the
    tokens mean exactly are not tested again."""
    asked: list[Actors] = []

    def estimate(groups: Actors) -> tuple[int, int]:
        asked.append(groups)
        return 100, 1_000

    page = plan(filters, dialect="postgresql", driven=True, matches=never, actor_matches=estimate)
    assert (page.driver, page.text, page.actors, asked) == (None, "few", actors, [actors])
    assert page.shape == dataclasses.replace(shape, text="few", actors=True)
    assert page.params["actors"] == " & ".join("(" + " | ".join(g) + ")" for g in actors)
    # Too many for one read, or many against the actors' events: the plan of the words alone.
    for both, alone in ((FEW + 1, 100 * FEW), (1_000, 1_000_000 // WALK_COST - 1)):
        walked = plan(
            filters,
            dialect="postgresql",
            driven=True,
            matches=never,
            actor_matches=lambda _g, both=both, alone=alone: (both, alone),
        )
        assert (walked.text, walked.actors, walked.shape.actors) == ("many", (), False)
    # Not asked: a ranked page, a plan off `event` (facets, `filtered`), no word.
    for ranked, driven in ((True, True), (False, False)):
        other = plan(
            filters,
            dialect="postgresql",
            ranked=ranked,
            driven=driven,
            matches=lambda: 10,
            actor_matches=never_estimated,
        )
        assert other.actors == ()
    no_words = dataclasses.replace(filters, words=None)
    unasked = plan(no_words, dialect="postgresql", driven=True, actor_matches=never_estimated)
    assert unasked.actors == ()


def test_a_ranked_postgresql_page_never_counts_itself() -> None:
    _, count = told(10)
    page = plan(
        Filters(words=WORDS), dialect="postgresql", ranked=True, one_page=True, matches=count
    )
    assert (page.text, page.counts_itself) == ("few", False)


@pytest.mark.parametrize("events", [MANY_EVENTS, 100_000])
def test_a_page_that_counted_itself_is_planned_again_once_the_count_is_known(
    events: int,
) -> None:
    _, count = told(10)
    first = plan(
        Filters(words=WORDS),
        dialect="postgresql",
        driven=True,
        one_page=True,
        matches=count,
        events=lambda: events,
    )
    assert (first.counts_itself, first.few) == (True, few_matches(events))
    assert first.shape == statements.Shape(text="few")
    few = first.recounted(first.few)
    assert (few.text, few.counts_itself) == ("few", False)
    many = first.recounted(first.few + 1)
    assert (many.text, many.counts_itself) == ("many", False)
    assert many.shape == statements.Shape(text="many")
    assert (first.text, first.counts_itself) == ("few", True)  # a new plan, the first unchanged


def test_a_plan_and_its_filters_are_values() -> None:
    filters = Filters(states=(7,), words=WORDS)
    page = plan(filters, dialect="sqlite", driven=True, matches=lambda: 3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        page.text = "many"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        filters.states = ()  # type: ignore[misc]
    assert page == plan(filters, dialect="sqlite", driven=True, matches=lambda: 3)
    # Each call gives a dict of its own, which a caller adds its page's values to.
    page.params["limit"] = 51
    assert "limit" not in page.params


def test_words_the_plan_depends_on_need_a_count() -> None:
    with pytest.raises(ValueError, match="how many events"):
        plan(Filters(words=WORDS), dialect="postgresql")
    with pytest.raises(ValueError, match="how many events there are"):
        plan(
            Filters(words=WORDS),
            dialect="postgresql",
            driven=True,
            one_page=True,
            matches=lambda: 10,
        )

"""Relevance pages read off the best-scoring candidates (SQLite) are exactly the ranking of every
match: same rows, same order, at every offset, with or without filters that drop candidates."""

from typing import Any

import pytest
from sqlalchemy.orm import Session

from app.timeline import service
from app.timeline.schemas import TimelineQuery
from tests.conftest import Writable
from tests.test_writes import new_event


def ranking(session: Session, params: dict[str, Any], offset: int, limit: int) -> list[Any]:
    query = TimelineQuery.model_validate({**params, "order": "relevance"})
    plan = service._plan(session, query)
    return [(row.id, row.score) for row in service._ranked_rows(session, plan, offset, limit)]


@pytest.mark.parametrize(
    "params",
    [
        {"q": "ambassador"},
        {"q": "drone"},
        # Candidates that fail the filter are dropped, so the page can need every match.
        {"q": "ambassador", "state": ["DZA"]},
        {"q": "mali", "category": ["ambassador_recall"]},
    ],
)
def test_candidates_give_the_ranking_of_every_match(
    session: Session, monkeypatch: pytest.MonkeyPatch, params: dict[str, Any]
) -> None:
    monkeypatch.setattr(service, "CANDIDATES_MAX", 0)  # every match, scored and sorted
    everything = ranking(session, params, 0, 1000)
    assert len(everything) > 2, everything
    monkeypatch.setattr(service, "CANDIDATES_MAX", 5_000)
    # A few candidates only: the rows above the lowest one's score are certain, the rest not.
    monkeypatch.setattr(service, "CANDIDATES_MIN", 1)
    for limit in (1, 2, 3):
        walked = []
        for offset in range(0, len(everything) + 1, limit):
            walked.extend(ranking(session, params, offset, limit))
        assert walked == everything, (limit, walked)


def test_ties_at_the_last_candidate_keep_timeline_order(
    writable: Writable, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Events with the same text score the same; their order is the timeline's. Created newest
    first, so the text index's own order (by row id) is the reverse of the page's."""
    for day in range(28, 22, -1):
        body = new_event(
            f"2025-03-{day}-ranking-tie",
            date=f"2025-03-{day}",
            title="Zyxtie statement",
            summary="Zyxtie, a word no other event has.",
        )
        assert (
            writable.client.post("/v1/events", json=body, headers=writable.auth()).status_code
            == 201
        )
    monkeypatch.setattr(service, "CANDIDATES_MIN", 1)
    with writable.session() as session:
        walked = [
            row for offset in range(7) for row in ranking(session, {"q": "zyxtie"}, offset, 1)
        ]
    # Internal ids grow with creation, which went newest first: timeline order is id order
    # reversed.
    ids = [event_id for event_id, _ in walked]
    assert ids == sorted(ids, reverse=True)
    assert len(ids) == 6

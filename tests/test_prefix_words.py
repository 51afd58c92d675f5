"""PostgreSQL reads the prefixes of several words as the whole words they begin (`search_word`,
`search_exact`): the pages find exactly what the prefixes find, with words a write has just
added, and the list is checked, rebuilt and restored."""

from typing import Any

import pytest
from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from app.timeline import search_index, service
from tests.conftest import ON_POSTGRES, Writable
from tests.test_explain import captured
from tests.test_writes import new_event

pytestmark = pytest.mark.skipif(not ON_POSTGRES, reason="PostgreSQL's list of words")

QUERIES = [
    "qorvex mali",
    "qorv mal",
    "qorvexa algeria",
    "qorvex qorvexium",
    "qor drone",
    "q m",
    "zzyzzx mali",
]

_TRUTH = text(
    "SELECT e.public_id FROM event e WHERE e.deleted_at IS NULL"
    " AND e.search_vector @@ to_tsquery('simple', :words)"
    " AND (:any_state OR EXISTS (SELECT 1 FROM event_participant p"
    " JOIN state s ON s.id = p.state_id WHERE p.event_id = e.id AND s.code IN :states))"
    " ORDER BY e.date, e.public_id"
).bindparams(bindparam("states", expanding=True))


def found(w: Writable, q: str, **more: Any) -> list[str]:
    """Every event a client pages through for `q=`, in order."""
    ids: list[str] = []
    params: dict[str, Any] = {"q": q, "limit": 2, **more}
    while True:
        response = w.client.get("/v1/timeline", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        ids.extend(item["id"] for item in body["items"])
        if not body.get("next_cursor"):
            return ids
        params["cursor"] = body["next_cursor"]


def truth(session: Session, q: str, states: list[str]) -> list[str]:
    """The same, from the prefixes themselves: the tsquery the words were always matched by."""
    words = service._engine_words("postgresql", q.split())
    params = {"words": words, "any_state": not states, "states": states or [""]}
    return list(session.scalars(_TRUTH, params))


def write(w: Writable, n: int, title: str, **changes: Any) -> None:
    body = new_event(f"2024-05-{n:02d}-prefix-words-{n}", date=f"2024-05-{n:02d}", title=title)
    body.update(changes)
    response = w.client.post("/v1/events", json=body, headers=w.auth())
    assert response.status_code == 201, response.text


def test_several_words_find_what_their_prefixes_find(writable: Writable) -> None:
    """Words new to the database, written in the same transaction as their event, and words
    that share prefixes; then a title edited to words no event had, and an event deleted."""
    write(writable, 1, "Qorvex statement on Mali")
    write(writable, 2, "Qorvexa and Algeria", participants=[{"state": "DZA", "role": "initiator"}])
    write(writable, 3, "Qorvexium, qorvex and a drone")
    for q in QUERIES:
        for states in ([], ["MLI"], ["DZA", "MLI"]):
            with writable.session() as session:
                expected = truth(session, q, states)
            assert found(writable, q, state=states) == expected, (q, states)
    with writable.session() as session:
        assert truth(session, "qorvex mali", []) != []
    response = writable.client.patch(
        "/v1/events/2024-05-01-prefix-words-1",
        json={"title": "Zzyzzx statement on Mali"},
        headers={**writable.auth(), "If-Match": "*"},
    )
    assert response.status_code == 200, response.text
    deleted = writable.client.delete(
        "/v1/events/2024-05-03-prefix-words-3", headers={**writable.auth(), "If-Match": "*"}
    )
    assert deleted.status_code == 204, deleted.text
    for q in QUERIES:
        with writable.session() as session:
            expected = truth(session, q, [])
        assert found(writable, q) == expected, q
    assert found(writable, "zzyzzx mali") == ["2024-05-01-prefix-words-1"]


def test_the_page_asks_the_index_for_whole_words(writable: Writable) -> None:
    """Several words read first: the statement rewrites the prefixes (one word is asked as a
    prefix: its matches are collected whole either way)."""
    write(writable, 1, "Qorvex statement on Mali")
    for q, rewritten in (("qorvex mali", True), ("qorvex", False)):
        with captured(writable.app.state.engine) as sent:
            assert writable.client.get("/v1/timeline", params={"q": q}).status_code == 200
        pages = [sql for sql, _ in sent if "search_vector @@" in sql]
        assert pages, q
        assert any("search_exact(" in sql for sql in pages) is rewritten, pages


def test_search_exact_reads_a_prefix_as_at_most_64_words(session: Session) -> None:
    """Words listed twice (two writers added them at once) count once."""
    session.execute(
        text("INSERT INTO search_word (word) SELECT 'zq' || n FROM generate_series(1, 70) n")
    )
    session.execute(
        text("INSERT INTO search_word (word) VALUES ('zw1'), ('zw1'), ('zw2'), ('zv1'), ('zb\\x')")
    )

    def exact(words: str) -> set[str]:
        """The words of the rewritten query, in whichever order ts_rewrite leaves them."""
        rewritten = session.scalar(text("SELECT search_exact(:w)::text"), {"w": words})
        return set(str(rewritten).split(" & "))

    assert exact("zw:* & zv:*") == {"( 'zw1' | 'zw2' )", "'zv1'"}
    assert exact("zq:* & zw1:*") == {"'zq':*", "'zw1'"}  # 70 words begin zq: left a prefix
    assert exact("zb:* & zw:*") == {"'zb':*", "( 'zw1' | 'zw2' )"}  # a backslash: left a prefix
    assert exact("zzzqqq:* & zv:*") == {"'zzzqqq':*", "'zv1'"}  # no such word


def test_the_list_of_words_is_checked_and_rebuilt(writable: Writable) -> None:
    write(writable, 1, "Qorvex statement on Mali")
    with writable.session() as session:
        assert search_index.unlisted_words(session) == 0
        session.execute(text("DELETE FROM search_word WHERE word IN ('qorvex', 'mali')"))
        assert search_index.unlisted_words(session) == 2
        assert search_index.check(session) == 2
        search_index.rebuild(session)
        assert search_index.unlisted_words(session) == 0
        session.rollback()

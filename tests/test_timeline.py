import csv
import datetime as dt
import io
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from app import writes
from app.db import begin_write
from app.errors import InvalidParameter
from app.models import State
from app.schemas import fold
from app.timeline import planner, service, statements
from app.timeline.schemas import TimelinePage, TimelineQuery
from tests import oracle
from tests.conftest import ON_POSTGRES, Writable
from tests.helpers import assert_problem, ids

SHOOT_DOWN = "2025-04-01-algeria-shoots-down-malian-drone"
AES_RECALL = "2025-04-06-aes-recall-ambassadors-from-algiers"


# Pages of words that the ways of reading `q=` must all answer alike: alone, with dates, with
# an order, with a state, with a category, and one that is empty (index 3).
WORD_QUERIES: list[dict[str, Any]] = [
    {"q": "ambassador"},
    {"q": "drone"},
    {"q": "ambassador", "from": "2023-06", "order": "desc"},
    {"q": "ambassador", "to": "2019"},  # before the first event: an empty page
    {"q": "ambassador", "state": "DZA"},
    {"q": "drone", "category": "shoot_down"},
    {"q": "mali"},  # in most events: on PostgreSQL, walked (`planner.few_matches`)
]


def all_ids(client: TestClient, **params: Any) -> list[str]:
    """Walk every page with the cursor and return the ids in order."""
    out: list[str] = []
    params = {"limit": 7, **params}
    for _ in range(100):
        response = client.get("/v1/timeline", params=params)
        out.extend(ids(response))
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return out
        params = {**params, "cursor": cursor}
    raise AssertionError("pagination did not end")


class TestDefaults:
    def test_first_event_is_the_2020_coup_in_mali(self, client: TestClient) -> None:
        first = client.get("/v1/timeline", params={"limit": 1}).json()["items"][0]
        assert first["id"] == "2020-08-18-mali-coup"
        assert first["date"] == "2020-08-18"
        assert first["category"] == "coup"

    def test_every_event_in_date_order(self, client: TestClient) -> None:
        assert all_ids(client) == oracle.in_order(oracle.events())

    def test_page_shape_matches_the_documented_schema(self, client: TestClient) -> None:
        body = client.get("/v1/timeline", params={"limit": 500}).json()
        TimelinePage.model_validate(body)
        assert body["links"] == {"next": None}
        assert body["next_cursor"] is None
        assert "total" not in body

    def test_item_carries_sources_participants_and_category(self, client: TestClient) -> None:
        for item in client.get("/v1/timeline", params={"limit": 500}).json()["items"]:
            assert item["sources"] and all(s["url"].startswith("http") for s in item["sources"])
            assert item["participants"]
            assert item["category"] and item["date_precision"] in {"day", "month", "year"}
            assert item["url"] == f"/v1/events/{item['id']}"

    def test_shoot_down_shows_both_sides_claims(self, client: TestClient) -> None:
        items = client.get("/v1/timeline", params={"from": "2025-04-01", "to": "2025-04-01"})
        event = next(i for i in items.json()["items"] if i["id"] == SHOOT_DOWN)
        positions = [c for c in event["claims"] if c["topic"] == "drone-position"]
        by_claimant = {(c["claimant"].get("state"), c["value"], c["unit"]) for c in positions}
        assert ("DZA", 2.0, "km_inside_algeria") in by_claimant
        assert ("DZA", 1.6, "km_inside_algeria") in by_claimant
        assert ("MLI", 9.5, "km_inside_mali") in by_claimant
        assert all(c["sources"] for c in event["claims"])

    def test_aes_recall_of_6_april_2025(self, client: TestClient) -> None:
        body = client.get("/v1/timeline", params={"category": "ambassador_recall"}).json()
        event = next(i for i in body["items"] if i["id"] == AES_RECALL)
        assert event["date"] == "2025-04-06"
        initiators = {
            p.get("state") or p.get("organisation")
            for p in event["participants"]
            if p["role"] == "initiator"
        }
        assert {"MLI", "NER", "BFA"} <= initiators
        assert {"state": "DZA", "role": "target"} in event["participants"]


class TestDates:
    @pytest.mark.parametrize(
        ("start", "end", "lo", "hi"),
        [
            ("2025-04", "2025-04", dt.date(2025, 4, 1), dt.date(2025, 4, 30)),
            ("2024", "2024", dt.date(2024, 1, 1), dt.date(2024, 12, 31)),
            ("2023-12-20", "2023-12-22", dt.date(2023, 12, 20), dt.date(2023, 12, 22)),
            ("2024-02", None, dt.date(2024, 2, 1), dt.date.max),
            (None, "2021", dt.date.min, dt.date(2021, 12, 31)),
        ],
    )
    def test_from_and_to_are_inclusive_and_accept_partial_dates(
        self, client: TestClient, start: str | None, end: str | None, lo: dt.date, hi: dt.date
    ) -> None:
        params = {k: v for k, v in {"from": start, "to": end}.items() if v}
        expected = oracle.in_order([e for e in oracle.events() if lo <= e["date"] <= hi])
        assert expected
        assert all_ids(client, **params) == expected

    def test_leap_day_is_a_date(self, client: TestClient) -> None:
        assert client.get("/v1/timeline", params={"from": "2024-02-29"}).status_code == 200


class TestParticipants:
    def test_state_any_role(self, client: TestClient) -> None:
        expected = oracle.in_order([e for e in oracle.events() if "DZA" in oracle.codes(e)])
        assert all_ids(client, state="DZA") == expected

    def test_repeated_state_matches_any(self, client: TestClient) -> None:
        expected = oracle.in_order([e for e in oracle.events() if oracle.codes(e) & {"NER", "BFA"}])
        assert all_ids(client, state=["NER", "BFA"]) == expected

    def test_actor_is_the_initiator(self, client: TestClient) -> None:
        expected = oracle.in_order(
            [e for e in oracle.events() if "DZA" in oracle.codes(e, "initiator")]
        )
        assert expected
        assert all_ids(client, actor="DZA") == expected

    def test_target_is_the_target(self, client: TestClient) -> None:
        expected = oracle.in_order(
            [e for e in oracle.events() if "MLI" in oracle.codes(e, "target")]
        )
        assert expected
        assert all_ids(client, target="MLI") == expected

    def test_actor_accepts_an_organisation(self, client: TestClient) -> None:
        expected = oracle.in_order(
            [e for e in oracle.events() if "ECOWAS" in oracle.codes(e, "initiator")]
        )
        assert expected
        assert all_ids(client, actor="ECOWAS") == expected

    def test_actor_and_target_combine(self, client: TestClient) -> None:
        got = all_ids(client, actor="MLI", target="DZA")
        expected = oracle.in_order(
            [
                e
                for e in oracle.events()
                if "MLI" in oracle.codes(e, "initiator") and "DZA" in oracle.codes(e, "target")
            ]
        )
        assert got == expected
        assert "2025-04-06-mali-summons-algerian-ambassador" in got

    def test_between_needs_every_state(self, client: TestClient) -> None:
        expected = oracle.in_order(
            [e for e in oracle.events() if {"MLI", "DZA"} <= oracle.codes(e)]
        )
        got = all_ids(client, between="MLI,DZA")
        assert got == expected
        assert SHOOT_DOWN in got

    def test_organisation_itself(self, client: TestClient) -> None:
        expected = oracle.in_order([e for e in oracle.events() if "AES" in oracle.codes(e)])
        assert all_ids(client, organisation="AES") == expected

    def test_organisation_with_members_as_of_each_event(self, client: TestClient) -> None:
        def matches(e: dict[str, Any]) -> bool:
            if "AES" in oracle.codes(e):
                return True
            states = {p["state"] for p in e["participants"] if "state" in p}
            return any(oracle.member_on(s, "AES", e["date"]) for s in states)

        expected = oracle.in_order([e for e in oracle.events() if matches(e)])
        got = all_ids(client, organisation="AES", include_members="true")
        assert got == expected
        # Mali's 2020 coup predates the AES: Mali was not yet a member then.
        assert "2020-08-18-mali-coup" not in got
        assert SHOOT_DOWN in got


class TestClassification:
    def test_kind(self, client: TestClient) -> None:
        expected = oracle.in_order([e for e in oracle.events() if e["kind"] == "incident"])
        assert all_ids(client, kind="incident") == expected

    def test_repeated_category_matches_any(self, client: TestClient) -> None:
        wanted = {"ambassador_recall", "ambassador_summons"}
        expected = oracle.in_order([e for e in oracle.events() if e["category"] in wanted])
        assert all_ids(client, category=sorted(wanted)) == expected

    def test_every_ambassador_recall_involving_algeria(self, client: TestClient) -> None:
        got = all_ids(client, state="DZA", category="ambassador_recall")
        assert AES_RECALL in got
        assert "2023-12-22-algeria-recalls-ambassador-from-bamako" in got

    def test_tag(self, client: TestClient) -> None:
        expected = oracle.in_order(
            [e for e in oracle.events() if "april-2025-crisis" in e.get("tags", [])]
        )
        assert expected
        assert all_ids(client, tag="april-2025-crisis") == expected


class TestSearch:
    @pytest.mark.parametrize("q", ["drone", "DRONE", "Akıncı drone"])
    def test_words_in_title_or_summary(self, client: TestClient, q: str) -> None:
        assert SHOOT_DOWN in all_ids(client, q=q)

    def test_accents_are_ignored(self, client: TestClient) -> None:
        assert all_ids(client, q="Keita") == all_ids(client, q="Keïta") != []

    def test_place_alias_finds_the_event(self, client: TestClient) -> None:
        # "Tinzawatène" is only a spelling of the place, not in any title or summary.
        assert not any("tinzawat" in (e["title"] + e["summary"]).lower() for e in oracle.events())
        assert SHOOT_DOWN in all_ids(client, q="Tinzawatène")

    def test_claims_are_searched(self, client: TestClient) -> None:
        assert SHOOT_DOWN in all_ids(client, q="radar")

    def test_all_words_must_match(self, client: TestClient) -> None:
        assert all_ids(client, q="drone zzzzunmatched") == []

    @pytest.mark.parametrize(
        ("q", "expected"), [("Tinzaouatene", "tinzaouaten"), ("Goita", "goïta")]
    )
    def test_accent_insensitive_full_text(self, client: TestClient, q: str, expected: str) -> None:
        found = all_ids(client, q=q)
        assert found
        events = {e["id"]: e for e in oracle.events()}
        assert any(expected in (events[i]["title"] + events[i]["summary"]).lower() for i in found)

    def test_word_prefixes_match(self, client: TestClient) -> None:
        assert SHOOT_DOWN in all_ids(client, q="tinzaouat")

    def test_relevance_ranks_and_highlights(self, client: TestClient) -> None:
        body = client.get(
            "/v1/timeline", params={"q": "drone tinzaouaten", "order": "relevance", "limit": 3}
        ).json()
        assert body["items"], body
        for item in body["items"]:
            matched = [run["text"] for run in item["snippet"] if run["match"]]
            assert matched, item["snippet"]
            assert all(fold(word).startswith(("drone", "tinzaouaten")) for word in matched)
        walked = [i["id"] for i in body["items"]]
        cursor = body["next_cursor"]
        while cursor:
            page = client.get(
                "/v1/timeline",
                params={
                    "q": "drone tinzaouaten",
                    "order": "relevance",
                    "limit": 3,
                    "cursor": cursor,
                },
            ).json()
            walked.extend(i["id"] for i in page["items"])
            cursor = page["next_cursor"]
        assert sorted(walked) == sorted(all_ids(client, q="drone tinzaouaten"))
        assert len(walked) == len(set(walked))

    def test_snippets_are_plain_text_runs(self, client: TestClient) -> None:
        """Issue 22: snippets were HTML, so a reader showing them as text saw `N&#x27;Daw`.
        They are runs of plain text; joined, they are words of the title and summary as the
        event has them."""
        body = client.get(
            "/v1/timeline", params={"q": "daw goita", "order": "relevance", "limit": 50}
        ).json()
        TimelinePage.model_validate(body)
        assert body["items"]
        events = {e["id"]: e for e in oracle.events()}
        for item in body["items"]:
            runs = item["snippet"]
            text = "".join(run["text"] for run in runs)
            assert "&" not in text and "<" not in text, text
            source = f"{events[item['id']]['title']} — {events[item['id']]['summary']}"
            assert text.strip("… ") in " ".join(source.split()), text
            matched = [run["text"] for run in runs if run["match"]]
            assert matched, runs
            assert all(fold(word).startswith(("daw", "goita")) for word in matched)
        assert any("N'Daw" in "".join(r["text"] for r in i["snippet"]) for i in body["items"])

    def test_the_order_parameter_says_no_html(self, client: TestClient) -> None:
        """Issue 22: its description held a raw `<mark>`, which the docs rendered as HTML."""
        spec = client.get("/openapi.json").json()
        (order,) = [
            p for p in spec["paths"]["/v1/timeline"]["get"]["parameters"] if p["name"] == "order"
        ]
        assert "<" not in order["description"]
        assert "snippet" in order["description"]

    @pytest.mark.parametrize("few", [0, 1, 3])
    def test_how_many_matches_count_as_few_changes_no_page(
        self, uncached_client: TestClient, monkeypatch: pytest.MonkeyPatch, few: int
    ) -> None:
        """Up to `FEW_MATCHES`, a page reads every match first; past it, it tests the rows it
        walks. On PostgreSQL a page of words alone counts its matches as it reads them and,
        past the limit, is read again the other way (`PagePlan.recounted`), also when that
        first read found nothing to show. Either way, the same pages."""
        expected = [all_ids(uncached_client, limit=2, **params) for params in WORD_QUERIES]
        assert all(expected[:3]) and not expected[3], expected
        assert len(expected[0]) > 3  # more than the largest `few`
        monkeypatch.setattr(statements, "FEW_MATCHES", few)
        assert [all_ids(uncached_client, limit=2, **params) for params in WORD_QUERIES] == expected

    @pytest.mark.parametrize("read_first", [0, 1, 10**9])
    def test_how_many_matches_among_how_many_events_count_as_few_changes_no_page(
        self, uncached_client: TestClient, monkeypatch: pytest.MonkeyPatch, read_first: int
    ) -> None:
        """On PostgreSQL a page of words alone reads its matches first up to fewer of them
        among fewer events (`planner.few_matches`): 0 walks every such page, 10**9 reads
        every one first as the fixed limit did, the seed's `mali` included. The same pages.
        SQLite never asks."""
        expected = [all_ids(uncached_client, limit=2, **params) for params in WORD_QUERIES]
        monkeypatch.setattr(planner, "READ_FIRST", read_first)
        assert [all_ids(uncached_client, limit=2, **params) for params in WORD_QUERIES] == expected

    @pytest.mark.skipif(not ON_POSTGRES, reason="SQLite counts the matches in its FTS5 index")
    @pytest.mark.parametrize(("estimate", "events"), [(0, 10**9), (10**9, 10**9), (0, 0)])
    def test_a_wrong_estimate_of_the_matches_changes_no_page(
        self,
        uncached_client: TestClient,
        monkeypatch: pytest.MonkeyPatch,
        estimate: int,
        events: int,
    ) -> None:
        """PostgreSQL chooses how to read `q=` from the planner's estimates of the matches and
        of the events (`service._estimated_matches`), which may be far off: the pages stay the
        same."""
        expected = [all_ids(uncached_client, limit=2, **params) for params in WORD_QUERIES]
        assert all(expected[:3]) and not expected[3], expected
        asked: list[str | None] = []

        def wrong(_session: Any, words: str | None) -> tuple[int, int]:
            asked.append(words)
            return estimate, events

        monkeypatch.setattr(service, "_estimated_matches", wrong)
        assert [all_ids(uncached_client, limit=2, **params) for params in WORD_QUERIES] == expected
        assert asked

    @pytest.mark.parametrize("few", [0, 1, 3])
    def test_exports_of_words_hold_every_match_whatever_few_is(
        self, uncached_client: TestClient, monkeypatch: pytest.MonkeyPatch, few: int
    ) -> None:
        """An export reads the whole query in batches: however the first batch was read, every
        match comes, once, in timeline order."""
        expected = all_ids(uncached_client, q="ambassador")
        monkeypatch.setattr(statements, "FEW_MATCHES", few)
        params = {"q": "ambassador", "format": "ndjson"}
        lines = uncached_client.get("/v1/timeline", params=params).text.splitlines()
        assert [orjson.loads(line)["id"] for line in lines] == expected
        params["format"] = "csv"
        exported = uncached_client.get("/v1/timeline", params=params).content.decode("utf-8-sig")
        rows = list(csv.DictReader(io.StringIO(exported)))
        assert [row["id"] for row in rows] == expected

    def test_relevance_needs_words(self, client: TestClient) -> None:
        assert_problem(client.get("/v1/timeline", params={"order": "relevance"}), 422, "order")

    @pytest.mark.parametrize(
        "q", ["NEAR(drone attack)", "drone AND", "dr*", "title:drone", "^drone", "-drone"]
    )
    def test_search_engine_syntax_is_plain_text(self, client: TestClient, q: str) -> None:
        assert client.get("/v1/timeline", params={"q": q}).status_code == 200

    @pytest.mark.parametrize("q", ["100%", "a_b", "' OR 1=1 --", '"drone"'])
    def test_sql_like_characters_are_literal(self, client: TestClient, q: str) -> None:
        response = client.get("/v1/timeline", params={"q": q})
        assert response.status_code == 200


class TestPaging:
    def test_descending_order(self, client: TestClient) -> None:
        assert all_ids(client, order="desc") == oracle.in_order(oracle.events(), desc=True)

    def test_pages_neither_skip_nor_repeat_across_equal_dates(self, client: TestClient) -> None:
        # 2025-04-06 and 2025-04-07 have several events each; a page size of 2 splits them.
        expected = oracle.in_order([e for e in oracle.events() if e["date"] >= dt.date(2025, 4, 1)])
        assert all_ids(client, **{"from": "2025-04", "limit": 2}) == expected
        assert all_ids(client, **{"from": "2025-04", "limit": 2, "order": "desc"}) == list(
            reversed(expected)
        )

    def test_next_link_and_link_header(self, client: TestClient) -> None:
        response = client.get("/v1/timeline", params={"state": "DZA", "limit": 2})
        body = response.json()
        assert body["next_cursor"]
        assert "cursor=" in body["links"]["next"] and "state=DZA" in body["links"]["next"]
        assert response.headers["link"] == f'<{body["links"]["next"]}>; rel="next"'
        follow = client.get(body["links"]["next"])
        assert follow.status_code == 200
        assert ids(follow)[0] not in [i["id"] for i in body["items"]]

    def test_last_page_has_no_link_header(self, client: TestClient) -> None:
        response = client.get("/v1/timeline", params={"limit": 500})
        assert "link" not in response.headers

    def test_count(self, client: TestClient) -> None:
        body = client.get(
            "/v1/timeline", params={"state": "MLI", "count": "true", "limit": 1}
        ).json()
        assert body["total"] == len([e for e in oracle.events() if "MLI" in oracle.codes(e)])
        assert len(body["items"]) == 1

    def test_default_and_maximum_limit(self, client: TestClient) -> None:
        assert len(client.get("/v1/timeline").json()["items"]) == min(50, len(oracle.events()))
        assert client.get("/v1/timeline", params={"limit": 500}).status_code == 200


class TestErrors:
    @pytest.mark.parametrize(
        ("params", "param"),
        [
            ({"state": "XXX"}, "state"),
            ({"state": "Mali"}, "state"),  # a name, not a code (any case of a code is one)
            ({"state": "ΜLI"}, "state"),  # Greek capital Mu: a confusable, not an ISO code
            ({"actor": "NOPE"}, "actor"),
            ({"target": "NOPE"}, "target"),
            ({"organisation": "NOPE"}, "organisation"),
            ({"between": "MLI"}, "between"),
            ({"between": "MLI,XXX"}, "between"),
            ({"between": "MLI,MLI"}, "between"),
            ({"include_members": "true"}, "include_members"),
            ({"from": "2025-13"}, "from"),
            ({"from": "2024-02-30"}, "from"),
            ({"from": "0000-00-00"}, "from"),
            ({"from": "yesterday"}, "from"),
            ({"to": "2025-04-31"}, "to"),
            ({"from": "2025-05", "to": "2025-04"}, "from"),
            ({"kind": "battle"}, "kind"),
            ({"category": "war"}, "category"),
            ({"limit": 0}, "limit"),
            ({"limit": 501}, "limit"),
            ({"limit": -1}, "limit"),
            ({"limit": "ten"}, "limit"),
            ({"order": "sideways"}, "order"),
            ({"count": "maybe"}, "count"),
            ({"q": ""}, "q"),
            ({"q": "--- ..."}, "q"),
            ({"q": "x" * 201}, "q"),
            ({"cursor": "not-a-cursor"}, "cursor"),
            ({"stat": "MLI"}, "stat"),
        ],
    )
    def test_bad_parameter_is_a_422_problem_naming_it(
        self, client: TestClient, params: dict[str, Any], param: str
    ) -> None:
        assert_problem(client.get("/v1/timeline", params=params), 422, param)

    def test_tampered_cursor(self, client: TestClient) -> None:
        cursor = client.get("/v1/timeline", params={"limit": 1}).json()["next_cursor"]
        flipped = cursor[:10] + ("A" if cursor[10] != "A" else "B") + cursor[11:]
        assert_problem(
            client.get("/v1/timeline", params={"limit": 1, "cursor": flipped}), 422, "cursor"
        )
        assert_problem(
            client.get("/v1/timeline", params={"limit": 1, "cursor": cursor[:-6]}), 422, "cursor"
        )

    def test_cursor_from_another_query(self, client: TestClient) -> None:
        cursor = client.get("/v1/timeline", params={"limit": 1}).json()["next_cursor"]
        response = client.get("/v1/timeline", params={"limit": 1, "state": "DZA", "cursor": cursor})
        body = assert_problem(response, 422, "cursor")
        assert "other filters" in body["detail"]
        response = client.get(
            "/v1/timeline", params={"limit": 1, "order": "desc", "cursor": cursor}
        )
        assert_problem(response, 422, "cursor")

    def test_cursor_survives_a_different_page_size(self, client: TestClient) -> None:
        cursor = client.get("/v1/timeline", params={"limit": 1}).json()["next_cursor"]
        assert client.get("/v1/timeline", params={"limit": 3, "cursor": cursor}).status_code == 200


class TestStateCodes:
    """A code names the same row for good, so a page looks a known one up once per database
    connection (`service._ids_by_code`); an unknown one every time."""

    def test_a_known_code_is_looked_up_once(self, writable: Writable) -> None:
        lookups: list[str] = []

        def grab(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            if "FROM state" in statement and "state.code IN" in statement:
                lookups.append(statement)

        fresh = {"Cache-Control": "no-cache"}
        engine = writable.app.state.engine
        # The general path's lookups: SQLite's fast path keeps the codes it read with its own
        # connection (app/timeline/inline.py).
        writable.app.state.inline_pages = None
        event.listen(engine, "before_cursor_execute", grab)
        try:
            first = writable.client.get("/v1/timeline?state=DZA", headers=fresh)
            after_first = len(lookups)
            again = writable.client.get("/v1/timeline?state=DZA", headers=fresh)
        finally:
            event.remove(engine, "before_cursor_execute", grab)
        assert after_first == 1
        assert len(lookups) == 1
        assert again.content == first.content

    def test_a_code_created_after_it_was_unknown_is_found(self, writable: Writable) -> None:
        assert_problem(writable.client.get("/v1/timeline?state=ZZN"), 422, "state")
        body = {"code": "ZZN", "alpha2": "ZN", "name": "Created by the tests"}
        assert writable.client.post("/v1/states", json=body, headers=writable.auth()).is_success
        response = writable.client.get("/v1/timeline?state=ZZN")
        assert response.status_code == 200
        assert response.json()["items"] == []

    def test_a_code_read_in_a_rolled_back_write_is_not_kept(self, writable: Writable) -> None:
        query = TimelineQuery.model_validate({"state": ["ZZR"]})
        factory = writes.session_factory(writable.engine)
        with factory() as session:
            begin_write(session)
            session.add(State(code="ZZR", alpha2="ZR", name="Rolled back by the tests"))
            session.flush()
            assert service._filters(session, query).states
            session.rollback()
        with factory() as session, pytest.raises(InvalidParameter):
            service._filters(session, query)
